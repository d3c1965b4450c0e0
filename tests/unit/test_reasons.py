"""Every failure is a reason: hostile shapes of input end quarantined with one line a person can act on, never
an internal error (`filegate: unexpected …`, exit 2), a traceback on stderr, or a silent success."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from datetime import date
from pathlib import Path

import pytest

from filegate.cli import main
from filegate.contracts.model import Contract
from filegate.pipeline.engine import EngineResult, run_engine


def contract(**spec: object) -> Contract:
    return Contract.model_validate({"name": "test_feed", "description": "test", **spec})


INFER = contract(format={"type": "auto"}, thresholds={"max_rejected_share": 0.5})


def run(c: Contract, tmp_path: Path, content: bytes, name: str = "f.csv") -> EngineResult:
    path = tmp_path / name
    path.write_bytes(content)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_engine(c, path, arrived=date(2026, 11, 21), work_dir=work, name=name)


def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, name: str,
        command: str = "profile") -> tuple[int, str]:
    """`filegate profile|parse FILE`: never the catch-all, never a traceback; returns (exit code, stderr)."""
    path = tmp_path / name
    path.write_bytes(content)
    code = main([command, str(path)])
    err = capsys.readouterr().err
    assert code != 2 and "unexpected" not in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return code, err


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _deep(levels: int) -> bytes:
    return b'{"id": 1, "v": ' + b"[" * levels + b"]" * levels + b"}"


# A CSV big enough that the tar header's NUL bytes stay under the "looks binary" share of the first 64 KB.
BIG_CSV = b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i) for i in range(20_000))


# ------------------------------------------------------------------------------------------------------ JSON

@pytest.mark.parametrize("levels", [340, 400, 5000])
def test_deeply_nested_json_is_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str], levels: int) -> None:
    array = b"[" + b'{"id": 1, "v": 2},' * 3 + _deep(levels) + b"]"
    cli(tmp_path, capsys, array, "f.json")
    result = run(INFER, tmp_path, array, name="f.json")
    if result.status == "quarantined":  # beyond the decoder's own depth: the array cannot be read past it
        assert "record 4 is nested too deeply" in result.reason
    else:  # the decoder copes, turning the value back into text does not: that record is rejected
        assert result.rows_rejected == 1 and "the record is nested too deeply" in result.rejected_file.read_text()
    lines = b'{"id": 1, "v": 2}\n' * 3 + _deep(levels) + b"\n"
    cli(tmp_path, capsys, lines, "f.ndjson")
    result = run(INFER, tmp_path, lines, name="f.ndjson")
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 3, 1)
    assert "line 4: the record is nested too deeply" in result.rejected_file.read_text()


@pytest.mark.parametrize(
    ("content", "name"),
    [(b'{"id": 1, "v": "\\ud800"}\n{"id": 2, "v": "ok"}\n{"id": 3, "v": "\\ud83d\\ude00"}\n', "f.ndjson"),
     (b'{"id": 1, "\\uDC00": "x"}\n{"id": 2}\n{"id": 3}\n', "f.ndjson"),
     (b'[{"id": 1, "v": "a\\udfffb"}, {"id": 2, "v": "ok"}, {"id": 3}]', "f.json")],
    ids=["ndjson-value", "ndjson-key", "json-value"],
)
def test_a_lone_surrogate_rejects_only_its_record(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  content: bytes, name: str) -> None:
    assert cli(tmp_path, capsys, content, name)[0] == 0
    result = run(INFER, tmp_path, content, name=name)
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 2, 1), result.reason
    assert "lone UTF-16 surrogate" in result.rejected_file.read_text()
    assert all(key.isprintable() for key in result.inferred_schema)  # the surrogate key is no column


def test_a_file_of_lone_surrogates_says_so(tmp_path: Path) -> None:
    result = run(INFER, tmp_path, b'[{"a": "\\ud800"}]', name="f.json")
    assert result.status == "quarantined"
    assert "no JSON objects that can be read: record 1 holds a lone UTF-16 surrogate" in result.reason


@pytest.mark.parametrize("tail", [b" garbage", b"\n[]", b", {}", b"\n\n x"])
def test_data_after_the_json_array_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              tail: bytes) -> None:
    content = b'[{"a": 1}]' + tail
    assert cli(tmp_path, capsys, content, "f.json", "parse")[0] == 1
    result = run(INFER, tmp_path, content, name="f.json")
    assert result.status == "quarantined" and "the JSON array is followed by more data" in result.reason
    assert run(INFER, tmp_path, b'[{"a": 1}]  \r\n\n', name="f.json").status == "processed"


def test_a_json_record_over_64_mib_is_too_large_not_invalid(tmp_path: Path) -> None:
    content = b'[{"id": 1, "big": "' + b"x" * (65 << 20) + b'"}]'
    result = run(contract(format={"type": "json", "max_record_bytes": 64 << 20}), tmp_path, content, name="f.json")
    assert result.status == "quarantined"
    assert "record 1 is larger than 64 MiB, the limit for one JSON record" in result.reason
    broken = run(contract(format={"type": "json"}), tmp_path, b'[{"id": 1, "x": tru}]', name="g.json")
    assert "record 1 is not valid JSON" in broken.reason


# ------------------------------------------------------------------------------------------------- archives

def _zip_with_version(version: int) -> bytes:
    data = bytearray(_zip("a.csv", b"a,b\n1,2\n"))
    data[4:6] = struct.pack("<H", version)
    central = data.find(b"PK\x01\x02")
    data[central + 6:central + 8] = struct.pack("<H", version)
    return bytes(data)


def _zip_with_raw_name(raw: bytes) -> bytes:
    """A zip whose member name is the 7 bytes `raw`, flagged as UTF-8."""
    data = bytearray(_zip("abc.csv", b"a,b\n1,2\n").replace(b"abc.csv", raw))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + flags_at
        data[at:at + 2] = struct.pack("<H", struct.unpack("<H", data[at:at + 2])[0] | 0x800)
    return bytes(data)


def _zip_with_empty_name() -> bytes:
    data = bytearray(_zip("x", b"a,b\n1,2\n"))
    for signature, name_length_at, header in ((b"PK\x03\x04", 26, 30), (b"PK\x01\x02", 28, 46)):
        at = data.find(signature)
        data[at + name_length_at:at + name_length_at + 2] = b"\x00\x00"
        del data[at + header:at + header + 1]
    end, central = data.find(b"PK\x05\x06"), data.find(b"PK\x01\x02")
    data[end + 12:end + 16] = struct.pack("<I", end - central)
    data[end + 16:end + 20] = struct.pack("<I", central)
    return bytes(data)


@pytest.mark.parametrize(
    ("build", "reason"),
    [(lambda: _zip_with_version(99), "the zip archive cannot be opened: zip file version 9.9"),
     (lambda: _zip_with_raw_name(b"a\xff\xfe.csv"), "a member name is not valid UTF-8 although the archive says so"),
     (_zip_with_empty_name, "the zip archive holds a member with an empty name")],
    ids=["unsupported-version", "name-not-utf8", "empty-name"],
)
def test_zip_structure_problems_are_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str], build,
                                            reason: str) -> None:
    content = build()
    for name in ("f.zip", "f.csv", "f.xlsx"):
        assert cli(tmp_path, capsys, content, name)[0] == 1
    assert reason in run(INFER, tmp_path, content, name="f.zip").reason
    xlsx = run(contract(format={"type": "xlsx"}), tmp_path, content, name="f.xlsx")
    assert xlsx.status == "quarantined" and ("cannot be opened" in xlsx.reason or "not an .xlsx" in xlsx.reason)


@pytest.mark.parametrize(
    ("build", "name", "reason"),
    [(lambda: _tar("x.csv", BIG_CSV), "f.tar", "the file is a tar archive: tar is not unpacked"),
     (lambda: _tar("x.csv", BIG_CSV), "f.csv", "the file is a tar archive: tar is not unpacked"),
     (lambda: gzip.compress(_tar("x.csv", BIG_CSV)), "f.tar.gz", "the gzip file holds a tar archive"),
     (lambda: gzip.compress(_tar("x.csv", BIG_CSV)), "f.csv.gz", "the gzip file holds a tar archive"),
     (lambda: _zip("x.tar", _tar("x.csv", BIG_CSV)), "f.zip", "x.tar in the zip archive is a tar archive"),
     (lambda: gzip.compress(_zip("x.csv", BIG_CSV)), "f.zip.gz", "the gzip file holds a zip archive: nested"),
     (lambda: gzip.compress(gzip.compress(BIG_CSV)), "f.csv.gz", "the gzip file holds a gzip archive: nested")],
    ids=["tar", "tar-renamed-csv", "tar-gz", "tar-gz-renamed-csv-gz", "tar-in-zip", "zip-in-gzip", "gzip-in-gzip"],
)
def test_tar_and_archives_in_gzip_are_refused_not_read_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               build, name: str, reason: str) -> None:
    content = build()
    code, err = cli(tmp_path, capsys, content, name, "parse")
    assert code == 1 and reason in err
    result = run(INFER, tmp_path, content, name=name)
    assert result.status == "quarantined" and reason in result.reason


def test_a_gzipped_workbook_still_reads(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["id", "name"])
    book.active.append([1, "a"])
    buffer = io.BytesIO()
    book.save(buffer)
    result = run(INFER, tmp_path, gzip.compress(buffer.getvalue()), name="f.xlsx.gz")
    assert (result.status, result.rows_valid, result.source["format"]) == ("processed", 1, "xlsx")


# ------------------------------------------------------------------------------------------------- encodings

def test_declared_utf16_without_a_bom(tmp_path: Path) -> None:
    declared = contract(format={"type": "csv", "encoding": "utf-16"})
    result = run(declared, tmp_path, b"id,name\n1,a\n")
    assert result.status == "quarantined"
    assert "declares utf-16 (format.encoding), but the file has no byte-order mark" in result.reason
    wide = run(declared, tmp_path, "id,name\n1,a\n".encode("utf-16-le"))  # no BOM, but plainly UTF-16
    assert (wide.status, wide.rows_valid) == ("processed", 1), wide.reason


def test_fixed_width_utf16_with_a_bad_surrogate(tmp_path: Path) -> None:
    content = b"\xff\xfe" + "abc\r\n".encode("utf-16-le") + b"\x00\xd8\x41\x00\r\x00\n\x00"
    for encoding in ("auto", "utf-16"):
        fixed = contract(format={"type": "fixed_width", "encoding": encoding,
                                 "fields": [{"name": "a", "start": 1, "width": 3}]})
        result = run(fixed, tmp_path, content, name="f.txt")
        assert result.status == "quarantined"
        assert "the file is not valid utf-16 text: illegal UTF-16 surrogate" in result.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"a,b,c\n1,2,3\n4,\xc3", "the file ends inside a UTF-8 character (line 3"),
     (b"a,b,c\n" + b"1,2,3\n" * 20_000 + b"4,\xe9\n5,6,7\n", "the file mixes encodings: line 20002")],
    ids=["cut-last-row", "latin1-ragged-row"],
)
def test_a_ragged_row_that_is_not_utf8_prints_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           content: bytes, reason: str) -> None:
    code, err = cli(tmp_path, capsys, content, "f.csv")
    assert code == 1 and reason in err


# ------------------------------------------------------------------------------------------------- delimited

@pytest.mark.parametrize("rows", [50_000, 400_000])
def test_the_unterminated_quote_is_named_wherever_it_is(tmp_path: Path, rows: int) -> None:
    """Row 2 opens a quote that never closes: the rest of the file is one ragged row (or more than a block)."""
    content = b'a,b,c\n1,"x,3\n' + b"".join(b"%d,y,z\n" % i for i in range(rows))
    result = run(INFER, tmp_path, content)
    assert result.status == "quarantined"
    assert "a quoted field opened on line 2 is never closed (unterminated quote)" in result.reason


def test_the_unterminated_quote_after_other_quote_quirks(tmp_path: Path) -> None:
    content = b'a,b,c\n1,"a"b,3\n' + b"4,y,z\n" * 500 + b'5,"x,3\n6,7,8\n'
    result = run(INFER, tmp_path, content)
    assert "a quoted field opened on line 503 is never closed" in result.reason


@pytest.mark.parametrize("content", [b"a,b,c", b"a,b,c\r\n"])
def test_a_header_without_data_or_final_newline(tmp_path: Path, content: bytes) -> None:
    result = run(INFER, tmp_path, content)
    assert result.status == "quarantined"
    assert "no data rows" in result.reason and "read block" not in result.reason


@pytest.mark.parametrize("column", ["_row", "_reasons"])
def test_a_header_named_like_the_rejects_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 column: str) -> None:
    content = f"{column},b\n1,2\n3\n4,5\n6,7\n".encode()
    result = run(INFER, tmp_path, content)
    assert (result.status, result.rows_valid, result.rows_rejected) == ("processed", 3, 1), result.reason
    lines = result.rejected_file.read_text().splitlines()
    assert lines[0] == f"_row,{column},b,_reasons"
    assert lines[1] == '3,3,,"line 3: expected 2 fields, found 1"'
    path = tmp_path / "f.csv"
    assert main(["validate", str(path), "--feed", "uploads"]) in (0, 1)
    assert "row 3: line 3: expected 2 fields, found 1" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- the messages

def test_reasons_are_one_line_escaped_and_bounded(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("\x1b[31mred\nline.csv", "x\n1\n")
        archive.writestr("b" * 5000 + ".csv", "x\n2\n")
    result = run(INFER, tmp_path, buffer.getvalue(), name="f.zip")
    assert "\\x1b[31mred\\nline.csv" in result.reason
    long_header = ("n" * 10_000 + ",") * 2 + "\x1b]0;title\x07\n1,2,3\n"
    for reason in (result.reason, run(INFER, tmp_path, long_header.encode()).reason):
        assert len(reason) <= 500
        assert reason.isprintable(), reason


def test_openpyxl_warnings_do_not_print_before_the_reason(tmp_path: Path) -> None:
    import subprocess
    import sys

    from openpyxl import Workbook

    book = Workbook()
    for cell in ("A1", "B1"):  # a date serial beyond any date: openpyxl warns, then reads it as #VALUE!
        book.active[cell] = 1e10
        book.active[cell].number_format = "yyyy-mm-dd"
    path = tmp_path / "f.xlsx"
    book.save(path)
    done = subprocess.run([sys.executable, "-m", "filegate.cli", "profile", str(path)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["filegate: f.xlsx: quarantined: duplicate column names in the header: #VALUE!"]
