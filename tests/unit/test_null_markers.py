"""Missing-value markers (NA, NULL, #N/A, …) and schema inference that never loses data."""

from __future__ import annotations

import json
import math
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from engine_support import rows_of, run

from filegate.contracts import ContractError, load_contract
from filegate.contracts.model import DEFAULT_NULL_VALUES, Contract
from filegate.pipeline.engine import EngineResult, run_engine
from filegate.profiling.merge import merge_states, table_state
from filegate.profiling.profile import TableProfile


def contract(**spec: object) -> Contract:
    return Contract.model_validate({"name": "na_feed", "description": "test",
                                    "thresholds": {"max_rejected_share": 1.0}, **spec})


def reasons_of(result: EngineResult) -> str:
    return result.rejected_file.read_text() if result.rejected_file else ""


def test_default_markers_are_pandas_read_csv_defaults() -> None:
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(DEFAULT_NULL_VALUES) == set(STR_NA_VALUES)


# ---- inference ---------------------------------------------------------------------------------------------

def test_inference_reads_markers_as_missing(tmp_path: Path) -> None:
    result = run(contract(), tmp_path, "n,x,d,s\n1,1.5,2026-01-02,a\nNA,N/A,NULL,#N/A\n3,nan,2026-01-04,None\n"
                                       "null,-1.#IND,<NA>,b\n")
    assert result.status == "processed" and result.rows_rejected == 0
    assert result.inferred_schema == {"n": {"type": "int", "nullable": True}, "x": {"type": "float", "nullable": True},
                                      "d": {"type": "date", "nullable": True},
                                      "s": {"type": "string", "nullable": True}}
    stats = result.column_stats
    assert (stats["n"]["nulls"], stats["n"]["null_markers"], stats["n"]["mean"]) == (2, 2, 2.0)
    assert (stats["x"]["nulls"], stats["x"]["null_markers"], stats["x"]["min"]) == (3, 3, 1.5)
    assert (stats["d"]["nulls"], stats["d"]["null_markers"]) == (2, 2)
    assert (stats["s"]["nulls"], stats["s"]["null_markers"]) == (2, 2)
    assert [r["s"] for r in rows_of(result)] == ["a", None, None, "b"]


def test_blank_cells_are_missing_but_not_markers(tmp_path: Path) -> None:
    result = run(contract(), tmp_path, "n,k\n1,a\n,b\nNA,c\n4,d\n")
    assert (result.column_stats["n"]["nulls"], result.column_stats["n"]["null_markers"]) == (2, 1)


def test_contract_null_values_extend_and_replace(tmp_path: Path) -> None:
    extended = run(contract(null_values={"extend": ["-", "n.v."]}), tmp_path, "n\n1\n-\nn.v.\nNA\n")
    assert extended.inferred_schema["n"]["type"] == "int"
    assert extended.column_stats["n"]["null_markers"] == 3
    replaced = run(contract(null_values={"replace": ["-"]}), tmp_path, "n\n1\n-\nNA\n")
    assert replaced.inferred_schema["n"]["type"] == "string"  # NA is a value again
    assert replaced.column_stats["n"]["null_markers"] == 1
    none = run(contract(null_values={"replace": []}), tmp_path, "n,k\n1,a\n,b\nNA,c\n")
    assert none.inferred_schema["n"] == {"type": "string", "nullable": True}


# ---- declared columns --------------------------------------------------------------------------------------

COLUMNS = [{"name": "id", "type": "int", "nullable": False}, {"name": "amount", "type": "decimal"},
           {"name": "ratio", "type": "float"}, {"name": "day", "type": "date"}, {"name": "flag", "type": "bool"},
           {"name": "country", "type": "string"}]


def test_typed_columns_read_markers_as_null_and_strings_keep_their_text(tmp_path: Path) -> None:
    result = run(contract(schema={"columns": COLUMNS}), tmp_path,
                 "id,amount,ratio,day,flag,country\n1,NA,NaN,NULL,N/A,NA\n2, n/a ,-nan,#N/A,None,None\n")
    assert result.rows_rejected == 0, reasons_of(result)
    rows = rows_of(result)
    assert [(r["amount"], r["ratio"], r["day"], r["flag"]) for r in rows] == [(None, None, None, None)] * 2
    assert [r["country"] for r in rows] == ["NA", "None"]  # a declared string column keeps its exact text
    stats = result.column_stats
    assert stats["amount"]["null_markers"] == 2 and stats["country"]["null_markers"] == 0


def test_per_column_null_values(tmp_path: Path) -> None:
    columns = [{"name": "id", "type": "int", "null_values": {"extend": ["-999"]}},
               {"name": "note", "type": "string", "null_values": {"extend": ["-"]}},
               {"name": "code", "type": "int", "null_values": {"replace": []}}]
    result = run(contract(schema={"columns": columns}), tmp_path, "id,note,code\n5,-,NA\n-999,NA,1\n")
    rows = rows_of(result)
    assert [(r["id"], r["note"]) for r in rows] == [(None, None)]  # -999 is missing; note: defaults + "-"
    assert "code: 'NA' is not a valid int" in reasons_of(result)  # replace: [] → NA is a value, and not an int
    assert result.column_stats["id"]["null_markers"] == 1  # counted among the valid rows, as nulls are


def test_contract_null_values_reach_typed_columns_not_declared_strings(tmp_path: Path) -> None:
    c = contract(schema={"columns": [{"name": "n", "type": "int"}, {"name": "s", "type": "string"}]},
                 null_values={"replace": ["-"]})
    result = run(c, tmp_path, "n,s\n-,-\n1,x\n")
    assert [(r["n"], r["s"]) for r in rows_of(result)] == [(None, "-"), (1, "x")]
    opted_in = contract(schema={"columns": [{"name": "s", "type": "string", "null_values": {"extend": []}}]},
                        null_values={"replace": ["-"]})
    assert [r["s"] for r in rows_of(run(opted_in, tmp_path, "s\n-\nNA\n"))] == [None, "NA"]


def test_required_column_names_the_marker(tmp_path: Path) -> None:
    result = run(contract(schema={"columns": COLUMNS[:1]}), tmp_path, "id,k\nNA,a\n,b\n2,c\n")
    reasons = reasons_of(result)
    assert "id: is required but 'NA' marks it missing" in reasons
    assert "id: is required but empty" in reasons


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("null_values: [NA, '-']", "null_values: Value error, give {extend: [...]} to add markers to the default "
                                   "ones, or {replace: [...]} to use only the listed ones; got list"),
        ("null_values: {extend: ['-'], replace: ['-']}", "null_values: Value error, give extend or replace, not both"),
        ("null_values: {}", "null_values: Value error, give {extend: [...]}"),
        ("null_values: {extend: [null]}", "extend[0] is no value (YAML reads a bare null or ~ so): quote the marker"),
        ("null_values: {extend: [-999]}", "extend[0]: -999 is not text: quote it ('-999')"),
        ("null_values: {replace: [no]}", "replace[0] is the boolean False"),
        ("null_values: {extend: NA}", "extend takes a list of texts, got 'NA'"),
        ("null_values: {add: ['-']}", "null_values.add: Extra inputs are not permitted"),
        ("schema: {columns: [{name: a, type: int, null_values: ['x']}]}",
         "schema.columns[0].null_values: Value error, give {extend: [...]}"),
    ],
)
def test_null_values_errors_are_clear(tmp_path: Path, yaml_text: str, problem: str) -> None:
    path = tmp_path / "feed_n.yaml"
    path.write_text("name: feed_n\ndescription: x\n" + yaml_text + "\n")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert problem in str(err.value)


def test_null_values_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feed_y.yaml"
    path.write_text("name: feed_y\ndescription: x\nnull_values: {extend: ['-', 'n.v.']}\n"
                    "schema: {columns: [{name: a, type: int, null_values: {replace: ['-999']}}]}\n")
    c = load_contract(path)
    assert c.null_markers() == frozenset(DEFAULT_NULL_VALUES) | {"-", "n.v."}
    assert c.null_markers(c.columns[0]) == frozenset({"-999"})


# ---- inference never loses data ----------------------------------------------------------------------------

def test_inference_keeps_leading_zeros_big_integers_and_hex_as_text(tmp_path: Path) -> None:
    text = ("zip,max,big,hex,neg,price,long\n"
            "00501,9223372036854775807,9223372036854775808,0x1F,-7,0.5,1.5\n"
            "10001,1,1,2,-08,1.25,12345678901234567\n")
    result = run(contract(), tmp_path, text)
    assert {k: v["type"] for k, v in result.inferred_schema.items()} == {
        "zip": "string", "max": "int", "big": "string", "hex": "string", "neg": "string", "price": "float",
        "long": "string"}
    rows = rows_of(result)
    assert rows[0]["zip"] == "00501" and rows[0]["max"] == 9223372036854775807
    assert rows[0]["big"] == "9223372036854775808" and rows[1]["long"] == "12345678901234567"


def test_plain_zero_and_decimals_below_one_stay_numbers(tmp_path: Path) -> None:
    result = run(contract(), tmp_path, "i,f\n0,0.25\n-0,0.30000000000000004\n10,-0.5\n")
    assert {k: v["type"] for k, v in result.inferred_schema.items()} == {"i": "int", "f": "float"}


def test_declared_int_column_rejects_hex(tmp_path: Path) -> None:
    result = run(contract(schema={"columns": [{"name": "n", "type": "int"}]}), tmp_path, "n\n0x1F\n0X10\n7\n")
    assert [r["n"] for r in rows_of(result)] == [7]
    assert "n: '0x1F' is not a valid int" in reasons_of(result)
    assert "n: '0X10' is not a valid int" in reasons_of(result)


# ---- profile ------------------------------------------------------------------------------------------------

def test_marker_counts_merge_across_parts() -> None:
    first, second = TableProfile(), TableProfile()
    first.update(pa.table({"a": [1, None]}), markers={"a": 1})
    second.update(pa.table({"a": [None, None]}), markers={"a": 2})
    merged = merge_states([json.loads(json.dumps(table_state(p))) for p in (first, second)])
    assert merged.as_dict()["a"]["null_markers"] == 3 and merged.as_dict()["a"]["nulls"] == 3


def _na_file(path: Path, rows: int = 2000, seed: int = 12) -> int:
    """Numeric, text and date columns with a few hundred NA-like cells spread over them."""
    rnd = random.Random(seed)
    markers = ["NA", "N/A", "NULL", "null", "NaN", "nan", "-NaN", "None", "#N/A", "-nan", "#NA", "<NA>", "n/a",
               "-1.#IND", "1.#QNAN", ""]
    placed = 0
    with path.open("w") as fh:
        fh.write("id,count,price,name,day\n")
        for i in range(rows):
            cells = [str(i + 1), str(rnd.randrange(-500, 5000)), f"{rnd.uniform(-100, 1000):.4f}",
                     rnd.choice(["alpha", "beta", "gamma", "delta"]) + str(rnd.randrange(50)),
                     (date(2020, 1, 1) + timedelta(days=rnd.randrange(2000))).isoformat()]
            for k in range(1, 5):
                if rnd.random() < 0.05:
                    cells[k] = rnd.choice(markers)
                    placed += 1
            fh.write(",".join(cells) + "\n")
    return placed


def test_profile_matches_pandas_read_csv_defaults(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    assert _na_file(path) >= 300
    result = run_engine(contract(), path, arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert result.status == "processed" and result.rows_rejected == 0
    assert {k: v["type"] for k, v in result.inferred_schema.items()} == {
        "id": "int", "count": "int", "price": "float", "name": "string", "day": "date"}
    frame = pd.read_csv(path)
    stats = result.column_stats
    for name in frame.columns:
        assert stats[name]["nulls"] == int(frame[name].isna().sum()), name
    for name in ("id", "count", "price"):
        assert float(stats[name]["min"]) == float(frame[name].min()), name
        assert float(stats[name]["max"]) == float(frame[name].max()), name
        assert math.isclose(stats[name]["mean"], float(frame[name].mean()), rel_tol=1e-12), name
    assert (str(stats["day"]["min"]), str(stats["day"]["max"])) == (frame["day"].min(), frame["day"].max())
