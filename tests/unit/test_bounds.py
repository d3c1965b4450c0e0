"""Every reader is bounded whatever the input's shape: one enormous line or record, a row of a million columns, a
workbook whose declared dimension lies, a file in another encoding than declared. Each shape is generated at test
time and read by `filegate profile` / `filegate parse` in a child process whose peak RSS (os.wait4) and wall time
are measured: the peak must stay under 1 GB and the outcome must be the expected one, with a reason a person can
act on.

Sizes: the big shapes are BIG bytes (256 MiB) times FILEGATE_BOUNDS_SCALE (default 1); FILEGATE_BOUNDS_SCALE=4
runs the 1 GiB cases. Figures are printed (`-s`) for the record.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from filegate.contracts.model import Contract, Format
from filegate.pipeline.engine import EngineResult, run_engine

SCALE = float(os.environ.get("FILEGATE_BOUNDS_SCALE", "1"))
BIG = int((256 << 20) * SCALE)
PEAK_LIMIT = 1 << 30
KILL_AT = 3 << 30  # a child past this is killed: a failing test must not take the shared machine down with it
TIMEOUT_S = 120 * max(SCALE, 1)
CHUNK = 8 << 20


# The child is started by a small launcher: a process's peak RSS (ru_maxrss) starts from its parent's at fork
# and survives exec, so measured straight from pytest it would include pytest's own memory. The launcher also
# kills the child past KILL_AT or the time limit.
LAUNCHER = r"""
import json, os, re, subprocess, sys, threading, time
report, kill_at, timeout, command = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
started = time.monotonic()
with open(report + ".out", "wb") as out, open(report + ".err", "wb") as err:
    child = subprocess.Popen(command, stdout=out, stderr=err)
killed, done = [], threading.Event()
def watch():
    while not done.wait(0.05):
        try:
            status = open(f"/proc/{child.pid}/status").read()
        except OSError:
            return
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        if rss and int(rss.group(1)) << 10 > kill_at:
            killed.append(f"killed at {int(rss.group(1)) >> 10} MB RSS")
        elif time.monotonic() - started > timeout:
            killed.append(f"killed after {timeout:.0f} s")
        if killed:
            child.kill()
            return
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
_, status, usage = os.wait4(child.pid, 0)
done.set()
watcher.join()
with open(report, "w") as fh:
    json.dump({"code": os.waitstatus_to_exitcode(status), "peak": usage.ru_maxrss << 10,
               "seconds": time.monotonic() - started, "killed": "; ".join(killed)}, fh)
"""


@dataclass
class Run:
    code: int
    peak: int  # bytes
    seconds: float
    killed: str
    out_path: Path
    err: str

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def summary(self) -> dict[str, object]:
        return json.loads(self.out)


def filegate(tmp_path: Path, *args: str) -> Run:
    """`filegate ARGS` in a child process: exit code, output, peak RSS and wall time."""
    report = tmp_path / f"run-{len(list(tmp_path.glob('run-*.json')))}.json"
    subprocess.run([sys.executable, "-c", LAUNCHER, str(report), str(KILL_AT), str(TIMEOUT_S), sys.executable,
                    "-m", "filegate.cli", *args], check=True,
                   env={**os.environ, "FILEGATE_FEEDS_DIR": str(tmp_path / "feeds")})
    figures = json.loads(report.read_text())
    err = Path(f"{report}.err").read_text(errors="replace")
    run = Run(figures["code"], figures["peak"], figures["seconds"], figures["killed"], Path(f"{report}.out"), err)
    print(f"\n  filegate {args[0]} {Path(args[-1]).name}: exit {run.code}, peak {run.peak >> 20} MB, "
          f"{run.seconds:.1f} s {run.killed}\n  stderr: {run.err.strip()[:300]}")
    return run


def bounded(run: Run) -> Run:
    assert not run.killed, run.killed
    assert run.peak < PEAK_LIMIT, f"peak RSS {run.peak >> 20} MB"
    assert run.code != 2 and "unexpected" not in run.err and "Traceback" not in run.err, run.err
    return run


def write(path: Path, *parts: bytes | tuple[bytes, int]) -> Path:
    """Writes the parts in turn; (piece, size) repeats piece up to size bytes, chunk by chunk."""
    with path.open("wb") as fh:
        for part in parts:
            if isinstance(part, bytes):
                fh.write(part)
                continue
            piece, size = part
            block = piece * max(1, CHUNK // len(piece))
            left = size
            while left > 0:
                fh.write(block[:left])
                left -= len(block)
    return path


def contract(tmp_path: Path, name: str, fmt: dict[str, object]) -> str:
    """A feed contract in the test's own feeds folder (the child's FILEGATE_FEEDS_DIR)."""
    feeds = tmp_path / "feeds"
    feeds.mkdir(exist_ok=True)
    (feeds / f"{name}.yaml").write_text(json.dumps({
        "name": name, "description": "bounds test", "format": fmt, "thresholds": {"max_rejected_share": 1.0}}))
    return name


def issue_example(summary: dict[str, object]) -> str:
    return " ".join(str(i.get("example", "")) for i in summary["issues"])  # type: ignore[union-attr]


def engine(tmp_path: Path, path: Path, fmt: dict[str, object]) -> EngineResult:
    """The engine in this process, for the small cases that need no memory measurement."""
    work = tmp_path / f"work-{path.name}"
    work.mkdir()
    feed = Contract.model_validate({"name": "bounds", "description": "bounds test", "format": fmt,
                                    "thresholds": {"max_rejected_share": 1.0}})
    return run_engine(feed, path, arrived=date(2026, 11, 21), work_dir=work, name=path.name)


# ---------------------------------------------------------------------------------------------------- NDJSON

def test_one_huge_ndjson_line_is_one_rejected_row(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.ndjson", b'{"id": 1, "v": "a"}\n{"id": 2, "v": "', (b"x", BIG), b'"}\n',
                 b'{"id": 3, "v": "c"}\n')
    run = bounded(filegate(tmp_path, "profile", str(path)))
    summary = run.summary()
    assert run.code == 0, run.err
    assert summary["rows"] == {"total": 3, "valid": 2, "rejected": 1, "rejected_percent": 33.333}
    assert "the record is larger than 16 MiB (format.max_record_bytes)" in issue_example(summary)
    assert summary["issues"][0]["sample_rows"] == [2]
    parsed = bounded(filegate(tmp_path, "parse", str(path)))
    assert [r["id"] for r in json.loads(parsed.out)] == ["1", "3"]
    assert f"skipped line 2: the record is larger than 16 MiB (format.max_record_bytes): {BIG + 19:,} characters, " \
           'starting {"id": 2, "v": "xxx' in parsed.err


def test_several_big_ndjson_lines_stay_bounded(tmp_path: Path) -> None:
    """Records just under the limit go through (the costliest shape: each is parsed, validated, profiled and
    written whole); those over it are rejected, each with its line."""
    under, over = (16 << 20) - 100, BIG // 4
    parts: list[bytes | tuple[bytes, int]] = []
    for i in range(1, 7):
        parts += [b'{"id": %d, "v": "' % i, (b"%d" % i, under if i % 2 else over), b'"}\n']
    path = write(tmp_path / "lines.ndjson", *parts)
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 0, run.err
    summary = run.summary()
    assert (summary["rows"]["valid"], summary["rows"]["rejected"]) == (3, 3)
    assert summary["issues"][0]["sample_rows"] == [2, 4, 6]


def test_max_record_bytes_is_a_contract_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "small.ndjson", b'{"id": 1, "v": "a"}\n{"id": 2, "v": "', (b"z", 5000), b'"}\n')
    result = engine(tmp_path, path, {"type": "ndjson", "max_record_bytes": 4096})
    assert (result.rows_valid, result.rows_rejected) == (1, 1)
    assert "the record is larger than 4,096 bytes (format.max_record_bytes): 5,019 characters" in \
           result.issues[0]["example"]
    array = write(tmp_path / "small.json", b'[{"id": 1}, {"id": 2, "v": "', (b"z", 5000), b'"}]')
    refused = engine(tmp_path, array, {"type": "json", "max_record_bytes": 4096})
    assert "record 2 is larger than 4,096 bytes, the limit for one JSON record" in str(refused.reason)


# ------------------------------------------------------------------------------------------------------ JSON

def test_one_huge_json_array_element_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.json", b'[{"id": 1}, {"id": 2, "v": "', (b"x", BIG), b'"}, {"id": 3}]')
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 1
    assert "record 2 is larger than 16 MiB, the limit for one JSON record (format.max_record_bytes)" in run.err


# ------------------------------------------------------------------------------------------------------- CSV

def test_a_single_huge_csv_line_is_refused_for_its_columns_before_it_is_split(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", (b"c,", BIG), b"\n1,2\n")
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 1
    assert "the header has more than 2,000 columns, the limit (format.max_columns)" in run.err
    assert run.peak < 300 << 20, f"{run.peak >> 20} MB for a header refused in its first block"


def test_a_huge_quoted_csv_field_is_a_clear_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "field.csv", b'id,note\n1,a\n2,"', (b"q", BIG), b'"\n3,c\n')
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 1
    assert "line 3 starts a row longer than the read block (1 MiB)" in run.err


def test_a_huge_unclosed_quote_is_found_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "open.csv", b'id,note\n1,a\n2,"', (b"q,\n", BIG))
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 1
    assert "a quoted field opened on line 3 is never closed" in run.err


def test_row_scan_edges(tmp_path: Path) -> None:
    """The bounded scan agrees with the csv module on quotes: doubled quotes, a quote mid-field, pieces' edges."""
    import io

    from filegate.parsers.csv_reader import record_ends, scan_rows

    assert record_ends('a,"b,""c""\nd",e\r\nx,y', 1, ",", '"') == (17, [3])
    assert record_ends('a,"b,""c""\nd",e\r\nx,y\n', 2, ",", '"') == (21, [3, 2])
    assert record_ends('a,b"c,d\n', 1, ",", '"') == (8, [3])
    assert record_ends('a,"open', 1, ",", '"') == (None, [2])
    for piece in range(1, 12):  # pieces cut everywhere, also between two doubled quotes
        text = 'a,b\n1,"x""\ny"\n2,z"q\n3,"'
        assert scan_rows(io.StringIO(text), ",", '"', 64, piece) == ("open", 5), piece
        assert scan_rows(io.BytesIO(b'a,b\n1,"x""""\n"\n2,c\n'), b",", b'"', 64, piece) is None, piece
        assert scan_rows(io.BytesIO(b'a\n"' + b"y\n" * 20 + b'"\nb\n'), b",", b'"', 16, piece) == ("long", 2)
    assert scan_rows(io.BytesIO(b"ab\n" + b"c" * 40 + b"\nd\n"), b",", b'"', 16) == ("long", 2)
    assert scan_rows(io.BytesIO(b"ab\n" + b"c" * 40), None, None, 16) == ("long", 2)


# ------------------------------------------------------------------------------------------------------ xlsx

def _workbook(path: Path, rows: dict[int, list[object]], dimension: str) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for number, values in rows.items():
        for column, value in enumerate(values, start=1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    plain = path.with_suffix(".plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="%s"/>' % dimension.encode(),
                                      data)
                assert count == 1
            target.writestr(item, data)
    return path


def test_a_sparse_sheet_with_a_full_sheet_dimension_reads_its_real_extent(tmp_path: Path) -> None:
    rows: dict[int, list[object]] = {1: ["id", "name", "amount"], 2: [1, "a", 1.5], 70_000: [2, "b", None],
                                     1_048_576: [3, None, 7]}
    path = _workbook(tmp_path / "sparse.xlsx", rows, "A1:XFD1048576")
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 0, run.err
    assert run.summary()["rows"]["total"] == 3 and list(run.summary()["columns"]) == ["id", "name", "amount"]
    assert run.seconds < 30
    from filegate.parsers.xlsx_reader import XlsxReader

    batches = list(XlsxReader(path, Format(type="xlsx")).batches())
    assert [r for b in batches for r in b.to_pylist()][2] == {"id": "3", "name": "", "amount": "7"}


def test_an_understated_dimension_never_truncates_the_sheet(tmp_path: Path) -> None:
    rows: dict[int, list[object]] = {1: ["a", "b", "c"]}
    rows.update({n: [n, f"r{n}", n * 2] for n in range(2, 1002)})
    path = _workbook(tmp_path / "under.xlsx", rows, "A1:B2")
    run = bounded(filegate(tmp_path, "profile", str(path)))
    assert run.code == 0, run.err
    assert run.summary()["rows"]["total"] == 1000 and list(run.summary()["columns"]) == ["a", "b", "c"]


def test_a_cell_far_right_is_rejected_and_trailing_empty_cells_are_trimmed(tmp_path: Path) -> None:
    rows: dict[int, list[object]] = {1: ["id", "name"], 2: [1, "a", None, ""], 3: [2, "b", *([None] * 16_000), "far"]}
    path = _workbook(tmp_path / "far.xlsx", rows, "A1:XFD1048576")
    result = engine(tmp_path, path, {"type": "xlsx"})
    assert (result.rows_total, result.rows_valid, result.rows_rejected) == (2, 1, 1)
    assert "expected 2 fields, found 16,003" in result.issues[0]["example"]


def test_a_sheet_over_max_cells_is_refused(tmp_path: Path) -> None:
    rows: dict[int, list[object]] = {n: [n, n, n, n] for n in range(1, 3001)}
    rows[1] = ["a", "b", "c", "d"]
    path = _workbook(tmp_path / "cells.xlsx", rows, "A1:D3000")
    result = engine(tmp_path, path, {"type": "xlsx", "max_cells": 10_000})
    assert result.status == "quarantined"
    assert "the worksheet holds more than 10,000 cells (format.max_cells) by row 2,501" in str(result.reason)


def test_a_shared_string_table_too_big_to_hold_is_refused_before_openpyxl_reads_it(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """openpyxl keeps sharedStrings.xml whole (about 6 bytes of memory per byte of XML)."""
    from filegate.parsers import xlsx_reader

    monkeypatch.setattr(xlsx_reader, "MAX_SHARED_STRINGS_BYTES", 1 << 20)
    path = _workbook(tmp_path / "strings.xlsx", {1: ["a"], 2: [1]}, "A1:A2")
    strings = "".join(f"<si><t>{os.urandom(12).hex()}</t></si>" for _ in range(50_000))  # ~2 MB, not a bomb
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", f'<sst count="50000" uniqueCount="50000">{strings}</sst>')
    result = engine(tmp_path, path, {"type": "xlsx"})
    assert result.status == "quarantined"
    assert "shared-string table is" in str(result.reason) and "export the sheet as CSV" in str(result.reason)


# ------------------------------------------------------------------------------------------------ fixed width

def test_a_huge_fixed_width_line_is_a_clear_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "train.txt", b"AB123\nCD456\n", (b"E", BIG), b"\nFG789\n")
    feed = contract(tmp_path, "trains", {"type": "fixed_width", "fields": [
        {"name": "code", "start": 1, "width": 2}, {"name": "number", "start": 3, "width": 3}]})
    run = bounded(filegate(tmp_path, "profile", "--feed", feed, str(path)))
    assert run.code == 1
    assert "line 3 is longer than the read block (1 MiB); the layout needs at most 5 characters" in run.err


# -------------------------------------------------------------------------------------------------- encodings

def test_utf8_declared_as_utf16_names_the_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"id,name\n", (b"1,caf\xc3\xa9\n", BIG // 8))
    feed = contract(tmp_path, "wide_text", {"type": "csv", "encoding": "utf-16-le"})
    run = bounded(filegate(tmp_path, "profile", "--feed", feed, str(path)))
    assert run.code == 1
    assert "the feed declares utf-16-le (format.encoding), but the file is not UTF-16-LE text" in run.err
    assert "it looks like utf-8" in run.err


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_declared_byte_order_must_fit_the_bytes(tmp_path: Path, encoding: str) -> None:
    fmt = {"type": "csv", "encoding": encoding}
    for kind in ("csv", "ndjson"):
        text = "id,name\n1,café\n2,東京\n" if kind == "csv" else '{"id": 1, "name": "café"}\n'
        right = write(tmp_path / f"right.{kind}", text.encode(encoding))
        assert engine(tmp_path, right, {**fmt, "type": kind}).status == "processed", (kind, encoding)
        wrong = write(tmp_path / f"wrong.{kind}", text.encode())
        result = engine(tmp_path, wrong, {**fmt, "type": kind})
        assert f"the feed declares {encoding} (format.encoding), but the file is not {encoding.upper()} text" in \
               str(result.reason)
    other = "utf-16-be" if encoding == "utf-16-le" else "utf-16-le"
    swapped = write(tmp_path / "swapped.csv", "id,name\n1,a\n".encode(other))
    if encoding.startswith("utf-16"):
        assert f"it looks like {other}" in str(engine(tmp_path, swapped, fmt).reason)


# ---------------------------------------------------------------------------------------------------- batches

@pytest.mark.parametrize("kind", ["json", "ndjson", "xlsx"])
def test_python_built_batches_flush_at_batch_bytes(tmp_path: Path, kind: str) -> None:
    from filegate.parsers.base import BATCH_BYTES
    from filegate.parsers.json_reader import JsonReader
    from filegate.parsers.xlsx_reader import XlsxReader

    value = os.urandom(15_000).hex()  # under Excel's 32,767 characters per cell, and not compressible 600x
    count = 3 * BATCH_BYTES // len(value)
    reader: JsonReader | XlsxReader
    if kind == "xlsx":
        path = _workbook(tmp_path / "b.xlsx", {1: ["id", "v"], **{n: [n, value] for n in range(2, count + 2)}},
                         f"A1:B{count + 1}")
        reader = XlsxReader(path, Format(type="xlsx"))
    else:
        records = [json.dumps({"id": n, "v": value}) for n in range(count)]
        text = "\n".join(records) if kind == "ndjson" else "[" + ",".join(records) + "]"
        path = tmp_path / f"b.{kind}"
        path.write_text(text)
        reader = JsonReader(path, Format(type=kind), lines=kind == "ndjson")
    batches = list(reader.batches())
    assert sum(b.num_rows for b in batches) == count
    assert len(batches) >= 3 and max(b.nbytes for b in batches) <= BATCH_BYTES + 2 * len(value)


def test_parquet_buffers_flush_by_bytes(tmp_path: Path) -> None:
    """Rows of megabytes each reach Parquet in row groups of at most ROW_GROUP_BYTES, not 128,000 rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from filegate.pipeline.engine import _PartitionWriters

    writers = _PartitionWriters(tmp_path, "day", "2026-11-21", "none")
    batch = pa.table({"v": ["x" * (8 << 20)] * 2})
    for _ in range(10):
        writers.write(batch)
        assert sum(writers.buffered_bytes.values()) <= writers.MAX_BUFFERED_BYTES
    writers.close()
    meta = pq.ParquetFile(writers.files["2026-11-21"]).metadata
    assert meta.num_rows == 20 and meta.num_row_groups >= 3
