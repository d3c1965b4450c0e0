"""Contract rules: column rules, row (cross-column) rules, file rules, threshold, transforms, inference."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from engine_support import rows_of, run

from filegate.contracts import ContractError, load_contract
from filegate.contracts.model import Contract
from filegate.pipeline.engine import run_engine


def contract(**spec: object) -> Contract:
    return Contract.model_validate({"name": "rules_feed", "description": "test", **spec})


COLUMNS = [
    {"name": "id", "type": "int", "nullable": False, "unique": True},
    {"name": "kind", "type": "string", "enum": ["a", "b"]},
    {"name": "code", "type": "string", "regex": "^[A-Z]{2}$"},
    {"name": "amount", "type": "decimal", "scale": 2, "min": 0, "max": 100},
    {"name": "ratio", "type": "float"},
    {"name": "flag", "type": "bool"},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "datetime"},
]
HEADER = "id,kind,code,amount,ratio,flag,day,at\n"
GOOD = "1,a,AB,10.50,0.5,yes,2026-11-20,2026-11-20 10:00:00\n"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("x,a,AB,1,1,yes,2026-11-20,2026-11-20 10:00:00", "id: 'x' is not a valid int"),
        (",a,AB,1,1,yes,2026-11-20,2026-11-20 10:00:00", "id: is required but empty"),
        ("1,a,AB,1,1,yes,2026-11-20,2026-11-20 10:00:00", "id: '1' appears more than once"),
        ("2,c,AB,1,1,yes,2026-11-20,2026-11-20 10:00:00", "kind: 'c' is not one of a, b"),
        ("2,a,abc,1,1,yes,2026-11-20,2026-11-20 10:00:00", "code: 'abc' does not match ^[A-Z]{2}$"),
        ("2,a,AB,-1,1,yes,2026-11-20,2026-11-20 10:00:00", "amount: -1.00 is below the minimum 0"),
        ("2,a,AB,101,1,yes,2026-11-20,2026-11-20 10:00:00", "amount: 101.00 is above the maximum 100"),
        ("2,a,AB,1.234,1,yes,2026-11-20,2026-11-20 10:00:00", "amount: '1.234' is not a valid decimal"),
        ("2,a,AB,1,inf,yes,2026-11-20,2026-11-20 10:00:00", "ratio: 'inf' is not a valid float"),  # nan: a marker
        ("2,a,AB,1,1,maybe,2026-11-20,2026-11-20 10:00:00", "flag: 'maybe' is not a valid bool"),
        ("2,a,AB,1,1,yes,2026-02-30,2026-11-20 10:00:00", "day: '2026-02-30' is not a valid date"),
        ("2,a,AB,1,1,yes,2026-11-20,noon", "at: 'noon' is not a valid datetime"),
    ],
)
def test_each_column_rule_rejects_with_its_reason(tmp_path: Path, row: str, reason: str) -> None:
    c = contract(schema={"columns": COLUMNS}, thresholds={"max_rejected_share": 0.9})
    result = run(c, tmp_path, HEADER + GOOD + row + "\n")
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 1, 1)
    assert reason in result.rejected_file.read_text()


def test_good_values_are_typed(tmp_path: Path) -> None:
    c = contract(schema={"columns": COLUMNS})
    result = run(c, tmp_path, HEADER + GOOD + " +2 ,b,CD,  7 ,1e3,No,2026-11-21,2026-11-21T11:30\n")
    assert result.rows_rejected == 0, result.rejected_file and result.rejected_file.read_text()
    second = rows_of(result)[1]
    assert (second["id"], second["ratio"], second["flag"]) == (2, 1000.0, False)
    assert str(second["amount"]) == "7.00" and second["code"] == "CD"


def test_cross_column_row_rule(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "ordered_at", "type": "datetime"},
                                     {"name": "shipped_at", "type": "datetime"}]},
                 rules=[{"name": "ship_after_order", "check": "shipped_at >= ordered_at",
                         "message": "shipped before ordered"}], thresholds={"max_rejected_share": 0.9})
    result = run(c, tmp_path, "ordered_at,shipped_at\n2026-11-20 10:00:00,2026-11-20 12:00:00\n"
                              "2026-11-20 10:00:00,2026-11-19 12:00:00\n2026-11-20 10:00:00,\n")
    assert (result.rows_valid, result.rows_rejected) == (2, 1)  # an empty value is the nullability rule's job
    assert "ship_after_order: shipped before ordered (ordered_at='2026-11-20 10:00:00'" in \
        result.rejected_file.read_text()
    assert {"column": "ship_after_order", "rule": "rule"}.items() <= result.issues[0].items()


def test_threshold_quarantines_the_whole_file(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "n", "type": "int"}]}, thresholds={"max_rejected_share": 0.25})
    result = run(c, tmp_path, "n\n1\n2\nx\ny\n")
    assert result.status == "quarantined"
    assert "2 of 4 rows (50.0%) were rejected, above the feed's limit of 25%" in result.reason


@pytest.mark.parametrize(
    ("file_rules", "text", "reason"),
    [
        ({"min_rows": 3}, "n\n1\n2\n", "fewer than the feed's minimum of 3 (file_rules.min_rows)"),
        ({"max_rows": 1}, "n\n1\n2\n", "more than the feed's maximum of 1"),
        ({"sorted_by": ["n"]}, "n\n1\n3\n2\n", "row 3 (2) comes after row 2 (3)"),
        ({"max_duplicate_share": 0.2}, "n\n1\n1\n1\n2\n", "2 of 4 rows (50.0%) repeat an earlier row exactly"),
    ],
)
def test_file_rules(tmp_path: Path, file_rules: dict[str, object], text: str, reason: str) -> None:
    c = contract(schema={"columns": [{"name": "n", "type": "int"}]}, file_rules=file_rules)
    result = run(c, tmp_path, text)
    assert result.status == "quarantined" and reason in result.reason


def test_sort_is_checked_across_batches(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "n", "type": "int"}]}, file_rules={"sorted_by": ["n"]})
    path = tmp_path / "f.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(5000)) + "4999\n1\n")
    result = run_engine(c, path, arrived=date(2026, 11, 21), work_dir=tmp_path, block_size=4096)
    assert result.status == "quarantined" and "row 5002 (1) comes after row 5001 (4999)" in result.reason


def test_uniqueness_across_batches(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "k", "type": "string", "unique": True}]})
    path = tmp_path / "f.csv"
    path.write_text("k\n" + "".join(f"key{i}\n" for i in range(5000)) + "key17\nkey4999\n")
    result = run_engine(c, path, arrived=date(2026, 11, 21), work_dir=tmp_path, block_size=4096)
    assert result.rows_rejected == 2
    assert "k: 'key17' appears more than once" in result.rejected_file.read_text()


def test_transforms_rename_cast_derive_filter(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "q", "type": "int"}, {"name": "p", "type": "decimal"},
                                     {"name": "s", "type": "string"}]},
                 transforms=[{"rename": {"q": "quantity"}}, {"cast": {"quantity": "float"}},
                             {"derive": "total", "expr": "quantity * 2"}, {"filter": "s != 'test'"}])
    result = run(c, tmp_path, "q,p,s\n2,1.50,real\n3,2.00,test\n")
    assert rows_of(result) == [{"quantity": 2.0, "p": rows_of(result)[0]["p"], "s": "real", "total": 4.0}]


def test_marketplace_aggregates_per_seller_product_day(samples: Path, tmp_path: Path) -> None:
    from filegate.contracts import get_contract

    result = run_engine(get_contract("marketplace"), samples / "marketplace" / "marketplace_2026-11-20.csv.gz",
                        arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert (result.status, result.rows_total, result.source["packed"]) == ("processed", 3000, "gzip")
    rows = rows_of(result)
    assert set(rows[0]) == {"seller_id", "product_id", "sale_date", "units", "revenue", "transactions",
                            "average_price"}
    keys = [(r["seller_id"], r["product_id"], r["sale_date"]) for r in rows]
    assert len(keys) == len(set(keys)) == result.rows_output
    import gzip

    completed = [line.split(",") for line in gzip.decompress(
        (samples / "marketplace" / "marketplace_2026-11-20.csv.gz").read_bytes()).decode().splitlines()[1:]
        if line.split(",")[6] == "completed"]
    assert sum(r["transactions"] for r in rows) == len(completed)
    assert sum(r["units"] for r in rows) == sum(int(c[4]) for c in completed)
    assert sorted(result.parquet_files) == ["2026-11-20", "2026-11-21"]


def test_inferred_schema(tmp_path: Path) -> None:
    c = contract(format={"type": "auto"})
    result = run(c, tmp_path, "i,f,b,d,t,s,e\n1,1.5,yes,2026-01-02,2026-01-02 03:04:05,x,\n"
                              "2,2,no,2026-01-03,2026-01-03T03:04,y,\n3,,,2026-01-04,2026-01-04,1,\n")
    assert result.inferred_schema == {
        "i": {"type": "int", "nullable": False}, "f": {"type": "float", "nullable": True},
        "b": {"type": "bool", "nullable": True}, "d": {"type": "date", "nullable": False},
        "t": {"type": "datetime", "nullable": False}, "s": {"type": "string", "nullable": False},
        "e": {"type": "string", "nullable": True}}
    assert result.summary()["inferred_schema"] == result.inferred_schema


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("rules: [{name: r, check: 'nope >= 1'}]", "rules[0] (r): unknown column(s) nope"),
        ("rules: [{name: r, check: '__import__(1)'}]", "unknown function"),
        ("file_rules: {sorted_by: [nope]}", "file_rules.sorted_by: unknown column(s) nope"),
        ("transforms: [{aggregate: {group_by: [a], measures: {x: 'median(a)'}}}]", "is not one of sum(column)"),
        ("transforms: [{aggregate: {group_by: [nope], measures: {x: 'count(*)'}}}]", "unknown column(s) nope"),
        ("destinations: {postgres: {table: t, natural_key: [nope]}}", "natural_key: unknown column(s) nope"),
        ("format: {type: csv, encoding: klingon}", "unknown encoding 'klingon'"),
        ("format: {type: xml}", "format.type"),
    ],
)
def test_contract_errors_name_file_key_and_problem(tmp_path: Path, yaml_text: str, problem: str) -> None:
    path = tmp_path / "feed_x.yaml"
    path.write_text("name: feed_x\ndescription: x\nschema: {columns: [{name: a, type: int}]}\n" + yaml_text + "\n")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(path) in str(err.value) and problem in str(err.value)
