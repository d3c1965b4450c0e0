from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filegate.contracts.model import ApiDestination
from filegate.delivery.payload import PayloadError, iter_payload_batches
from filegate.delivery.template import PayloadTemplate, TemplateError

ROW = {"order_id": 7, "email": "ana@example.com", "total": decimal.Decimal("19.90"), "day": dt.date(2026, 11, 20)}
META = {"feed": "orders", "file_id": 3, "file_name": "o.csv", "sha256": "ab" * 32}


def render(spec, row=ROW):
    return PayloadTemplate.compile(spec).bind(META)(row)


def test_flat_mapping_still_works() -> None:
    assert render({"id": "order_id", "total": "total"}) == {"id": 7, "total": "19.90"}


def test_nested_objects_constants_and_file_facts() -> None:
    spec = {"id": "order_id", "customer": {"email": "email", "tier": {"$const": "gold"}},
            "money": {"amount": "total", "currency": {"$const": "EUR"}}, "on": "day",
            "source": {"feed": {"$meta": "feed"}, "file": {"$meta": "file_name"}}, "n": {"$const": [1, None]},
            "raw": {"$column": "order_id"}}
    assert render(spec) == {"id": 7, "customer": {"email": "ana@example.com", "tier": "gold"},
                            "money": {"amount": "19.90", "currency": "EUR"}, "on": "2026-11-20",
                            "source": {"feed": "orders", "file": "o.csv"}, "n": [1, None], "raw": 7}
    assert PayloadTemplate.compile(spec).columns == ("order_id", "email", "total", "day")


def test_empty_template_sends_every_column() -> None:
    assert render({}) == {"order_id": 7, "email": "ana@example.com", "total": "19.90", "day": "2026-11-20"}


@pytest.mark.parametrize(("spec", "message"), [
    ({"a": {"$const": 1, "b": "x"}}, r"payload\.a: expected exactly one of"),
    ({"a": {"b": {"$meta": "password"}}}, r"payload\.a\.b: \$meta must be one of"),
    ({"a": 5}, r"payload\.a: expected a column name"),
    ({"a": ""}, r"payload\.a: a column name cannot be empty"),
    ({"a": {"$col": "x"}}, r"payload\.a: expected exactly one of"),
])
def test_bad_templates_name_the_field(spec, message) -> None:
    with pytest.raises(TemplateError, match=message):
        PayloadTemplate.compile(spec)


def test_contract_rejects_a_bad_template() -> None:
    with pytest.raises(ValueError, match=r"payload\.x: expected a column name"):
        ApiDestination(endpoint="/v1/x", payload={"x": 1.5})
    api = ApiDestination(endpoint="/v1/x", payload={"x": {"y": "col"}}, envelope="records", rate_limit_per_s=5)
    assert api.envelope == "records" and api.concurrency == 4


def test_batches_stream_from_parquet_with_stable_boundaries(tmp_path) -> None:
    for part in range(2):
        pq.write_table(pa.table({"order_id": list(range(part * 7, part * 7 + 7)), "other": ["x"] * 7}),
                       tmp_path / f"{part}.parquet")
    files = sorted(tmp_path.glob("*.parquet"))
    batches = list(iter_payload_batches(files, {"id": "order_id"}, 5))
    assert [len(b) for b in batches] == [5, 5, 4]
    assert [r["id"] for b in batches for r in b] == list(range(14))
    with pytest.raises(PayloadError, match="reads column\\(s\\) missing that the processed output lacks"):
        list(iter_payload_batches(files, {"id": "missing"}, 5))
