"""Every format the engine reads, good and broken: a broken file always ends with a reason a person can act on."""

from __future__ import annotations

import codecs
import gzip
import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filegate import sample_files as generate
from filegate.contracts import get_contract
from filegate.contracts.model import Contract
from filegate.parsers import open_reader, prepare
from filegate.pipeline.engine import EngineResult, run_engine


def contract(**spec: object) -> Contract:
    return Contract.model_validate({"name": "test_feed", "description": "test", **spec})


INFER = contract(format={"type": "auto"}, thresholds={"max_rejected_share": 0.5})


def run(c: Contract, tmp_path: Path, content: bytes | str, name: str = "f.csv") -> EngineResult:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_engine(c, path, arrived=date(2026, 11, 21), work_dir=work, name=name)


def rows_of(result: EngineResult) -> list[dict[str, object]]:
    return [row for path in result.parquet_files.values() for row in pq.read_table(path).to_pylist()]


def parsed(tmp_path: Path, content: bytes, fmt: dict[str, object], name: str = "f") -> list[dict[str, str]]:
    """What `filegate parse` prints: text exactly as written, before casting."""
    path = tmp_path / name
    path.write_bytes(content)
    c = contract(format=fmt)
    reader, _ = open_reader(prepare(path, c.format, tmp_path), c.format)
    header = reader.read_header()
    return [dict(zip(header, values, strict=True)) for b in reader.batches()
            for values in zip(*(b.column(h).to_pylist() for h in header), strict=True)]


# ------------------------------------------------------------------------------------------------- CSV dialects

@pytest.mark.parametrize(
    ("encoded", "delimiter"),
    [
        ("id,name\r\n1,Zoë\r\n".encode(), ","),
        (codecs.BOM_UTF8 + "id;name\n1;Zoë\n".encode(), ";"),
        (codecs.BOM_UTF16_LE + "id\tname\r\n1\tZoë\r\n".encode("utf-16-le"), "\t"),
        ("id|name\n1|Zoë\n".encode("utf-16-be"), "|"),
        ("id,name\n1,Zoë\n".encode("cp1252"), ","),
        ("id,name\n1,Zo\u00eb \u20ac\n".encode("cp1252"), ","),
    ],
    ids=["utf8-crlf", "utf8-bom-semicolon", "utf16le-bom-tab", "utf16be-nobom-pipe", "latin1", "cp1252-euro"],
)
def test_encodings_and_delimiters_are_detected(tmp_path: Path, encoded: bytes, delimiter: str) -> None:
    records = parsed(tmp_path, encoded, {"type": "csv"})
    assert records[0]["id"] == "1" and records[0]["name"].startswith("Zoë")
    result = run(INFER, tmp_path, encoded)
    assert result.status == "processed", result.reason
    assert result.source["delimiter"] == delimiter
    assert result.inferred_schema == {"id": {"type": "int", "nullable": False},
                                      "name": {"type": "string", "nullable": False}}


def test_rfc4180_quoting_is_unquoted_exactly(tmp_path: Path) -> None:
    content = b'id,note\r\n1,"a ""quoted"" word, and a comma"\r\n2,"two\nlines"\n3,plain\r\n'
    assert [r["note"] for r in parsed(tmp_path, content, {"type": "csv"})] == [
        'a "quoted" word, and a comma', "two\nlines", "plain"]


def test_tsv_sample_in_cp1252(samples: Path, tmp_path: Path) -> None:
    result = run_engine(get_contract("stock_levels"), samples / "stock_levels" / "stock_2026-11-20.tsv",
                        arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert (result.status, result.rows_valid) == ("processed", 15)
    assert result.source["encoding"] == "cp1252"
    assert "Käsereibe „Profi“" in {r["description"] for r in rows_of(result)}


# ---------------------------------------------------------------------------------------------------- JSON

def test_json_array_keeps_literal_text_and_nested_json(tmp_path: Path) -> None:
    content = b'[{"id": 1, "price": 19.90, "tags": {"a": [1, 2.50]}, "ok": true, "gone": null},\n {"id": 2}]'
    records = parsed(tmp_path, content, {"type": "json"})
    assert records[0] == {"id": "1", "price": "19.90", "tags": '{"a":[1,2.50]}', "ok": "true", "gone": ""}
    assert records[1] == {"id": "2", "price": "", "tags": "", "ok": "", "gone": ""}


def test_ndjson_bad_lines_are_rejected_with_their_line(tmp_path: Path) -> None:
    c = contract(format={"type": "ndjson"}, schema={"columns": [{"name": "id", "type": "int"}]},
                 thresholds={"max_rejected_share": 0.5})
    result = run(c, tmp_path, '{"id": 1}\n\n{"id": 2\n[1, 2]\n{"id": 3}\n', name="f.ndjson")
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 2, 2)
    text = result.rejected_file.read_text()
    assert "line 3: not valid JSON" in text and "line 4: a JSON object is expected, found an array" in text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"id": 1}', "a JSON array of objects is expected"),
        (b'[{"id": 1}, {"id": 2}', "the JSON array is not closed"),
        (b'[{"id": 1} {"id": 2}]', "',' or ']' is expected"),
        (b"   ", "only whitespace"),
    ],
)
def test_broken_json_arrays(tmp_path: Path, content: bytes, reason: str) -> None:
    result = run(contract(format={"type": "json"}), tmp_path, content, name="f.json")
    assert result.status == "quarantined" and reason in result.reason


def test_shipped_json_samples(samples: Path, tmp_path: Path) -> None:
    good = run_engine(get_contract("shipments"), samples / "shipments" / "shipments_2026-11-20.json",
                      arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert (good.status, good.rows_valid, good.rows_rejected) == ("processed", 59, 1)
    assert "shipped_after_ordered: shipped before it was ordered" in good.rejected_file.read_text()


# ---------------------------------------------------------------------------------------------- fixed width

def test_fixed_width_trains(samples: Path, tmp_path: Path) -> None:
    result = run_engine(get_contract("trains"), samples / "trains" / "trains_20261120_0800.txt",
                        arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert (result.status, result.rows_total, result.rows_rejected) == ("processed", 120, 2)
    rejected = result.rejected_file.read_text()
    assert "the record is 30 characters long; the layout needs at least 53" in rejected
    assert "late_means_delayed: a late train (status L) needs a positive delay" in rejected
    assert list(result.parquet_files) == ["2026-11-20"]
    first = rows_of(result)[0]
    assert set(first) >= {"train_id", "event", "planned", "movement_date"} and first["planned"].year == 2026


def test_fixed_width_needs_a_layout() -> None:
    with pytest.raises(ValueError, match=r"fixed_width needs format\.fields"):
        contract(format={"type": "fixed_width"})
    with pytest.raises(ValueError, match="overlap"):
        contract(format={"type": "fixed_width", "fields": [{"name": "a", "start": 1, "width": 4},
                                                           {"name": "b", "start": 3, "width": 2}]})


# --------------------------------------------------------------------------------------------- compression

def test_gzip_and_zip_inputs(tmp_path: Path) -> None:
    csv = b"id,name\n1,a\n2,b\n"
    assert run(INFER, tmp_path, gzip.compress(csv), name="f.csv.gz").rows_valid == 2
    zipped = run(INFER, tmp_path, generate._zip("inner.csv", csv), name="f.zip")
    assert (zipped.status, zipped.rows_valid, zipped.source["packed"]) == ("processed", 2, "zip")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (generate.zip_bomb(32), "refused as a possible decompression bomb"),
        (generate.gzip_bomb(40), "refused as a possible decompression bomb"),
        (generate._zip("inner.zip", generate._zip("x.csv", b"a\n1\n")), "nested archives are refused"),
        (gzip.compress(b"id\n1\n" * 1000)[:-40], "the gzip file is corrupt or truncated"),
        (b"PK\x03\x04garbage", "the zip archive cannot be opened"),
    ],
    ids=["zip-bomb", "gzip-bomb", "nested", "truncated-gzip", "broken-zip"],
)
def test_archives_are_bounded(tmp_path: Path, content: bytes, reason: str) -> None:
    result = run(INFER, tmp_path, content, name="f.bin")
    assert result.status == "quarantined" and reason in result.reason
    assert not (tmp_path / "work" / "decompressed").exists() or (tmp_path / "work" / "decompressed").stat(
    ).st_size < 64 << 20


def test_zip_with_two_files_is_refused(tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    result = run(INFER, tmp_path, buffer.getvalue(), name="f.zip")
    assert "holds 2 files (a.csv, b.csv); exactly one is expected" in result.reason


# ---------------------------------------------------------------------------------------------------- xlsx

def test_xlsx_formula_cells_stay_inert(samples: Path, tmp_path: Path) -> None:
    result = run_engine(get_contract("price_lists"), samples / "price_lists" / "prices_2026-11.xlsx",
                        arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 12, 1)
    rejected = result.rejected_file.read_text()
    assert "'=cmd|' /C calc'!A0" in rejected and ",=cmd" not in rejected
    assert rows_of(result)[0]["valid_from"] == date(2026, 11, 1)
    assert str(rows_of(result)[1]["price"]) == "5.50"


def test_xlsx_formula_text_is_exact_in_parquet(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["id", "cell"])
    book.active.append([1, "=cmd|' /C calc'!A0"])
    path = tmp_path / "f.xlsx"
    book.save(path)
    result = run_engine(INFER, path, arrived=date(2026, 11, 21), work_dir=tmp_path)
    assert rows_of(result) == [{"id": 1, "cell": "=cmd|' /C calc'!A0"}]
    assert result.column_stats["cell"]["top_values"][0]["value"].startswith("'=")  # inert in the summary JSON


# ------------------------------------------------------------------------------------ the broken-file catalogue

@pytest.mark.parametrize(
    ("builder", "reason"),
    [
        (lambda: b"", "the file is empty (0 bytes)"),
        (lambda: b"id,name\n", "no data rows"),
        (generate.duplicate_headers, "duplicate column names in the header: id"),
        (generate.wide_line, "the header has 100,000 columns"),
        (generate.unterminated_quote, "a quoted field opened on line 3 is never closed"),
        (generate.nul_bytes, "the file looks binary"),
        (generate.binary_garbage, "the file looks binary"),
        (lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "the file is a PNG image"),
        (generate.mixed_encoding, "the file mixes encodings: line 5002"),
        (generate.ragged, "40 of 60 rows (66.7%) were rejected"),
    ],
    ids=["empty", "header-only", "duplicate-headers", "100000-columns", "unterminated-quote", "nul-bytes",
         "binary-garbage", "png", "mixed-encodings", "ragged"],
)
def test_broken_files_end_quarantined_with_a_reason(tmp_path: Path, builder, reason: str) -> None:
    result = run(INFER, tmp_path, builder())
    assert result.status == "quarantined"
    assert reason in result.reason


def test_sporadic_nul_bytes_reject_only_their_rows(tmp_path: Path) -> None:
    content = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(2000)) + b"2000,bad\x00name\n"
    result = run(INFER, tmp_path, content)
    assert (result.status, result.rows_rejected) == ("processed", 1)
    assert "holds a NUL byte" in result.rejected_file.read_text()


def test_ragged_rows_name_their_line(tmp_path: Path) -> None:
    result = run(INFER, tmp_path, "a,b\n1,2\n3\n4,5\n6,7\n8,9\n")
    assert result.rows_rejected == 1
    assert "line 3: expected 2 fields, found 1" in result.rejected_file.read_text()


def test_every_shipped_sample_ends_as_expected_yaml_says(samples: Path, tmp_path: Path) -> None:
    import yaml

    plan = yaml.safe_load((samples / "expected.yaml").read_text())["phases"]
    for item in (i for phase in plan for i in phase if i["expect"] != "duplicate" and i["feed"] != "pdfs"):
        work = tmp_path / item["file"].replace("/", "_")
        work.mkdir()
        result = run_engine(get_contract(item["feed"]), samples / item["file"], arrived=date(2026, 11, 21),
                            work_dir=work, name=Path(item["file"]).name)
        assert result.status == item["expect"], (item, result.reason)
        assert result.status == "processed" or result.reason
        json.dumps(result.summary(), default=str)  # the summary always serialises


def test_raw_copies_without_extension_still_read(samples: Path, tmp_path: Path) -> None:
    """process_raw_file downloads to work_dir/raw: the readers must not depend on the extension."""
    for feed, sample in (("price_lists", "price_lists/prices_2026-11.xlsx"),
                         ("uploads", "uploads/measurements.zip"),
                         ("marketplace", "marketplace/marketplace_2026-11-20.csv.gz")):
        work = tmp_path / feed
        work.mkdir()
        (work / "raw").write_bytes((samples / sample).read_bytes())
        result = run_engine(get_contract(feed), work / "raw", arrived=date(2026, 11, 21), work_dir=work)
        assert result.status == "processed", (feed, result.reason)
