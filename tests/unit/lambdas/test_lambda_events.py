"""One JSON Schema and one example per handler; the DAG's payload builder and the handlers use the same files."""

from __future__ import annotations

import importlib
import json

import pytest

from filegate.functions.catalog import FUNCTIONS, event_name
from filegate.functions.events import EventError, example, handler_names, schema, validate_event
from filegate.functions.invoke import build_payload


def test_every_registered_function_has_a_schema_an_example_and_an_importable_handler() -> None:
    assert sorted({str(spec["event"]) for spec in FUNCTIONS.values()}) == handler_names()
    for name, spec in FUNCTIONS.items():
        module, _, attribute = str(spec["handler"]).rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), name
        assert schema(event_name(name))["type"] == "object"
        validate_event(event_name(name), example(event_name(name)))


@pytest.mark.parametrize("handler", handler_names())
def test_examples_carry_references_not_bodies(handler: str) -> None:
    event = example(handler)
    assert len(json.dumps(event)) < 4096
    assert not any(key in event for key in ("body", "content", "data", "rows"))


def test_schema_errors_name_every_problem_with_its_path() -> None:
    event = example("convert_part")
    event["part"] = {"index": -1, "start": 0}
    del event["raw_key"]
    with pytest.raises(EventError) as err:
        validate_event("convert_part", event)
    message = str(err.value)
    assert "'raw_key' is a required property" in message
    assert "part: 'end' is a required property" in message
    assert "part.index: -1 is less than the minimum of 0" in message


def test_payload_builder_validates_before_anything_is_sent() -> None:
    fields = example("process_file")
    assert build_payload("process_file", **fields) == fields
    with pytest.raises(EventError, match=r"Additional properties are not allowed .'body' was unexpected"):
        build_payload("process_file", **fields, body="id,amount\n1,2\n")
    with pytest.raises(EventError, match="raw_key"):
        build_payload("process_file", **{**fields, "raw_key": "processed/lines/x.csv"})


def test_unknown_handler_is_named() -> None:
    with pytest.raises(EventError, match="no event schema for handler 'nope'"):
        schema("nope")
