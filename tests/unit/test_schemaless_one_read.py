"""A file without declared columns is read once: the schema inferred from the first batch, each later batch
checked against it. A later value that changes a type sends the file back to two reads (infer from all of it,
then validate), so the result is always the whole file's: these compare both ways on the same files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filegate.contracts.model import Contract
from filegate.pipeline import engine
from filegate.pipeline.engine import EngineResult, run_engine

CONTRACT = Contract.model_validate({"name": "adhoc", "description": "test", "format": {"type": "csv"},
                                    "thresholds": {"max_rejected_share": 1.0}})
GOOD = "7,00501,12,3.5,2026-11-21 13:45:12,true,books\n"
HEADER = "id,code,qty,price,at,flag,word\n"


def _run(tmp_path: Path, text: str, label: str) -> EngineResult:
    path = tmp_path / "f.csv"
    path.write_text(text)
    work = tmp_path / label
    work.mkdir()
    # A small first block: the first batch holds a few rows, the rest of the file comes after it.
    return run_engine(CONTRACT, path, arrived=date(2026, 11, 21), work_dir=work, block_size=256)


def _outcome(result: EngineResult) -> dict[str, object]:
    return {"status": result.status, "reason": result.reason, "rows": (result.rows_total, result.rows_rejected),
            "inferred": result.inferred_schema, "schema": result.schema, "file_schema": result.file_schema,
            "issues": result.issues, "stats": result.column_stats, "duplicates": result.duplicate_rows,
            "rows_out": [r for p in sorted(result.parquet_files.values()) for r in pq.read_table(p).to_pylist()],
            "rejected": result.rejected_file.read_text() if result.rejected_file else None}


def _two_reads(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> EngineResult:
    with monkeypatch.context() as patch:
        patch.setattr(engine, "_run_reading_once", lambda *a, **k: None)
        return _run(tmp_path, text, "two_reads")


def _files_in(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob("*"))


LATE = {
    "int becomes float": "{n},00502,1.5,3.5,2026-11-21 13:45:12,false,toys\n",
    "a blank in a column without one": "{n},00502,,3.5,2026-11-21 13:45:12,false,toys\n",
    "a marker in a column without one": "{n},00502,NA,3.5,2026-11-21 13:45:12,false,toys\n",
    "a leading zero in an int column": "{n},00502,012,3.5,2026-11-21 13:45:12,false,toys\n",
    "a float with more digits than a double": "{n},00502,12,3.1234567890123456789,2026-11-21 13:45:12,f,toys\n",
    "a bool column meets a number": "{n},00502,12,3.5,2026-11-21 13:45:12,1,toys\n",
    "datetime becomes text": "{n},00502,12,3.5,2026-02-30 13:45:12,false,toys\n",
    "an int that int64 cannot hold": "{n},00502,99999999999999999999,3.5,2026-11-21 13:45:12,false,toys\n",
}


@pytest.mark.parametrize("late", sorted(LATE))
def test_a_late_value_that_changes_the_schema_gives_the_whole_files_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: str) -> None:
    rows = [GOOD.replace("7,", f"{i},", 1) for i in range(1, 200)]
    text = HEADER + "".join(rows) + LATE[late].format(n=200) + GOOD.replace("7,", "201,", 1)
    once = _run(tmp_path, text, "once")
    assert _outcome(once) == _outcome(_two_reads(tmp_path, text, monkeypatch))
    assert once.inferred_schema != _run(tmp_path, HEADER + "".join(rows), "clean").inferred_schema
    assert _files_in(tmp_path / "once") == _files_in(tmp_path / "two_reads")  # the first try left nothing behind


def test_a_column_blank_at_first_takes_its_type_from_later_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a,b\n" + "".join(f"{i},\n" for i in range(200)) + "".join(f"{i},{i}.5\n" for i in range(200))
    once = _run(tmp_path, text, "once")
    assert once.inferred_schema == {"a": {"type": "int", "nullable": False}, "b": {"type": "float", "nullable": True}}
    assert _outcome(once) == _outcome(_two_reads(tmp_path, text, monkeypatch))


def test_a_file_that_keeps_its_types_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    real_open = engine.open_reader
    monkeypatch.setattr(engine, "open_reader", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    text = HEADER + "".join(GOOD.replace("7,", f"{i},", 1) for i in range(1, 400))
    once = _run(tmp_path, text, "once")
    assert len(opened) == 1
    assert once.inferred_schema == {
        "id": {"type": "int", "nullable": False}, "code": {"type": "string", "nullable": False},
        "qty": {"type": "int", "nullable": False}, "price": {"type": "float", "nullable": False},
        "at": {"type": "datetime", "nullable": False}, "flag": {"type": "bool", "nullable": False},
        "word": {"type": "string", "nullable": False}}
    monkeypatch.setattr(engine, "open_reader", real_open)
    assert _outcome(once) == _outcome(_two_reads(tmp_path, text, monkeypatch))


@pytest.mark.parametrize("text", ["id,name,id\n1,a,2\n", "id,name\n", "a,b\n1,2\n" + "3,4,5,6,7,8\n" * 3])
def test_a_file_refused_early_gets_the_two_reads_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    once = _run(tmp_path, text, "once")
    assert _outcome(once) == _outcome(_two_reads(tmp_path, text, monkeypatch))
