"""One JSON Schema and one example event per handler, in functions/schemas/: the DAG validates every payload
against them before invoking, the handlers validate what they receive, and the tests use the examples.

The files sit inside the package, so the Lambda zip and the Airflow bundle carry the same copy."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).with_name("schemas")
COMMON = "_common.schema.json"


class EventError(ValueError):
    """An event that does not match its handler's schema; the message lists every problem with its path."""


def handler_names() -> list[str]:
    return sorted(p.name.removesuffix(".schema.json") for p in EVENTS_DIR.glob("*.schema.json")
                  if p.name != COMMON)


@cache
def schema(handler: str) -> dict[str, Any]:
    path = EVENTS_DIR / f"{handler}.schema.json"
    if not path.is_file():
        raise EventError(f"no event schema for handler {handler!r} (known: {', '.join(handler_names())})")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def example(handler: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS_DIR / f"{handler}.example.json").read_text(encoding="utf-8"))
    return document


@cache
def _validator(handler: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    common = json.loads((EVENTS_DIR / COMMON).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(COMMON, Resource.from_contents(common))
    main = schema(handler)
    registry = registry.with_resource(main["$id"], Resource.from_contents(main))
    # Relative "$ref": "_common.schema.json#..." resolves against the main schema's $id.
    registry = registry.with_resource(main["$id"].rsplit("/", 1)[0] + "/" + COMMON, Resource.from_contents(common))
    Draft202012Validator.check_schema(main)
    return Draft202012Validator(main, registry=registry)


def validate_event(handler: str, event: Any) -> None:
    errors = sorted(_validator(handler).iter_errors(event), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors[:10])
        raise EventError(f"event for {handler} does not match functions/schemas/{handler}.schema.json: {problems}")
