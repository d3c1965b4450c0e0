"""The engine on good and broken CSV files: every bad input ends with a reason a person can act on."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filegate.contracts import get_contract
from filegate.contracts.model import Contract
from filegate.pipeline.engine import run_engine

HEADER = "order_id,order_date,customer_email,sku,quantity,unit_price,currency\n"
GOOD_ROW = "{id},2026-11-20,a{id}@example.com,ABC-1234,2,19.99,EUR\n"


@pytest.fixture
def orders() -> Contract:
    return get_contract("orders")


def run(contract: Contract, tmp_path: Path, content: bytes | str, name: str = "f.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_engine(contract, path, arrived=date(2026, 11, 21), work_dir=work)


def test_good_file_is_typed_transformed_and_partitioned(orders: Contract, tmp_path: Path) -> None:
    result = run(orders, tmp_path, HEADER + "".join(GOOD_ROW.format(id=i) for i in range(1, 6)))
    assert (result.status, result.rows_total, result.rows_valid, result.rows_rejected) == ("processed", 5, 5, 0)
    table = pq.read_table(result.parquet_files["2026-11-20"])
    assert table.column_names == ["order_id", "order_date", "email", "sku", "quantity", "unit_price", "currency",
                                  "line_total"]
    assert str(table.schema.field("unit_price").type) == "decimal128(18, 2)"
    assert [str(v) for v in table["line_total"].to_pylist()] == ["39.98"] * 5
    assert result.column_stats["quantity"]["mean"] == 2.0


def test_rejected_rows_carry_every_reason(orders: Contract, tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(id=i) for i in range(1, 10)]
    rows.append("10,2026-13-01,bad,abc,0,1.234,JPY\n")
    result = run(orders, tmp_path, HEADER + "".join(rows))
    assert result.status == "processed"
    assert result.rows_rejected == 1
    reasons = result.rejected_file.read_text()
    for expected in ["order_date: '2026-13-01' is not a valid date", "customer_email: 'bad' does not match",
                     "sku: 'abc' does not match", "quantity: 0 is below the minimum 1",
                     "unit_price: '1.234' is not a valid decimal", "currency: 'JPY' is not one of EUR, USD, GBP"]:
        assert expected in reasons
    assert {i["rule"] for i in result.issues} >= {"type", "regex", "min", "enum"}


def test_duplicate_key_is_rejected_after_first(orders: Contract, tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(id=i) for i in range(1, 11)] + [GOOD_ROW.format(id=3)]
    result = run(orders, tmp_path, HEADER + "".join(rows))
    assert result.rows_rejected == 1
    assert "order_id: '3' appears more than once" in result.rejected_file.read_text()
    # The exact repeat of row 3 never reaches the profile: with a non-null unique key, no valid row can repeat.
    assert result.duplicate_rows == 0
    assert not any(i["rule"] == "duplicate_row" for i in result.issues)


def test_duplicate_rows_are_counted_when_no_key_rules_them_out(tmp_path: Path) -> None:
    contract = Contract.model_validate({"name": "nokey", "description": "no key", "format": {"type": "csv"},
                                        "schema": {"columns": [{"name": "n", "type": "int"}]}})
    result = run(contract, tmp_path, "n\n1\n2\n1\n1\n")
    assert (result.duplicate_rows, result.rows_rejected) == (2, 0)
    assert [i["sample_rows"] for i in result.issues if i["rule"] == "duplicate_row"] == [[3, 4]]


def test_too_many_rejects_quarantines_the_file(orders: Contract, tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(id=i) for i in range(1, 4)] + ["x,2026-11-20,a@b.cc,ABC-1234,1,1.00,EUR\n"] * 2
    result = run(orders, tmp_path, HEADER + "".join(rows))
    assert result.status == "quarantined"
    assert "2 of 5 rows (40.0%) were rejected, above the feed's limit of 20%" in result.reason
    assert result.rejected_file is not None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (HEADER, "no data rows"),
        ("a,b\n1,2\n", "missing column(s) order_id"),
        (HEADER.strip() + ",extra\n", "unexpected column(s) extra"),
        ("order_id,order_id\n1,1\n", "duplicate column names in the header: order_id"),
        ("\n\n", "the first line is blank"),
    ],
)
def test_broken_files_are_quarantined_with_a_reason(orders: Contract, tmp_path: Path, content, reason: str) -> None:
    result = run(orders, tmp_path, content)
    assert result.status == "quarantined"
    assert reason in result.reason


def test_ragged_rows_are_rejected_with_their_line(orders: Contract, tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(id=i) for i in range(1, 10)] + ["99,2026-11-20,short\n"]
    result = run(orders, tmp_path, HEADER + "".join(rows))
    assert result.status == "processed"
    assert result.rows_total == 10 and result.rows_rejected == 1
    assert "expected 7 fields, found 3" in result.rejected_file.read_text()


def test_quoted_fields_with_newlines_and_doubled_quotes(tmp_path: Path) -> None:
    contract = Contract.model_validate({"name": "notes", "description": "x",
                                        "schema": {"columns": [{"name": "id", "type": "int"}, {"name": "note"}]}})
    result = run(contract, tmp_path, 'id,note\r\n1,"line one\r\nline ""two"""\r\n2,plain\r\n')
    assert result.status == "processed"
    table = pq.read_table(next(iter(result.parquet_files.values())))
    assert table["note"].to_pylist() == ['line one\r\nline "two"', "plain"]


def test_gzip_input(orders: Contract, tmp_path: Path) -> None:
    data = gzip.compress((HEADER + GOOD_ROW.format(id=1)).encode())
    result = run(orders, tmp_path, data, name="f.csv.gz")
    assert (result.status, result.rows_valid) == ("processed", 1)


def test_formula_cells_stay_inert_in_quarantine(orders: Contract, tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(id=i) for i in range(1, 10)] + ['10,2026-11-20,=cmd|"/c calc"!A1,ABC-1234,1,1.00,EUR\n']
    result = run(orders, tmp_path, HEADER + "".join(rows))
    assert "'=cmd|" in result.rejected_file.read_text()


def test_shipped_samples(orders: Contract, samples: Path, tmp_path: Path) -> None:
    good = run_engine(orders, samples / "orders" / "orders_2026-11-20.csv", arrived=date(2026, 11, 21),
                      work_dir=tmp_path)
    assert (good.status, good.rows_valid, good.rows_rejected) == ("processed", 12, 3)
