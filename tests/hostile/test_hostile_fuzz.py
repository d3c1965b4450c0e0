"""Fuzzing the readers and the engine with hypothesis: arbitrary bytes per format, text shaped like each format,
and mutated seeds from the hostile corpus. Property: run_engine returns a result (processed or quarantined) whose
reason obeys the reason rules, or a ParseError with such a reason escapes; never any other exception, never a hang.

Each target runs for a time budget, in rounds of hypothesis examples: FILEGATE_FUZZ_SECONDS (default 40, the
`make test` budget) is shared by the targets; `make fuzz` sets it from FUZZ_SECONDS. Every crash is shrunk by
hypothesis, written to tests/artifacts/fuzz-crashes/ and listed; executions and crashes are printed per target.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import CASES, TRAINS_LAYOUT, raw_zip, sheet_row, xlsx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from filegate.contracts.model import Contract
from filegate.parsers import ParseError
from filegate.pipeline.engine import run_engine

CRASHES = Path(__file__).resolve().parents[1] / "artifacts" / "fuzz-crashes"
TOTAL_SECONDS = float(os.environ.get("FILEGATE_FUZZ_SECONDS", "40"))
HANG_SECONDS = 30
MAX_REASON = 500
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
STATS: dict[str, dict[str, Any]] = {}


class Hang(Exception):
    pass


@contextmanager
def hang_guard(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_reason(reason: str) -> None:
    assert len(reason) <= MAX_REASON, f"reason of {len(reason)} characters"
    raw = RAW_CONTROL.search(reason)
    assert raw is None, f"raw control character {raw.group()!r} in the reason {reason!r}"


def contract(fmt: dict[str, Any]) -> Contract:
    return Contract.model_validate({"name": "fuzz", "description": "fuzz target", "format": fmt,
                                    "thresholds": {"max_rejected_share": 1.0}})


def engine_on(data: bytes, name: str, fmt: dict[str, Any]) -> None:
    """The property: a result, or a ParseError, with a reason that obeys the rules."""
    with tempfile.TemporaryDirectory(prefix="filegate-fuzz-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        work = Path(tmp) / "work"
        work.mkdir()
        try:
            with hang_guard(HANG_SECONDS):
                result = run_engine(contract(fmt), path, arrived=date(2026, 11, 21), work_dir=work, name=name)
        except ParseError as exc:
            check_reason(str(exc))
            return
        assert result.status in ("processed", "quarantined"), result.status
        if result.reason is not None:
            check_reason(result.reason)
        if result.status == "processed":
            assert result.rows_valid + result.rows_rejected == result.rows_total


# ---- strategies

CSV_TOKENS = st.sampled_from([*'ab1,;|\t"\'\n\r \x00\x1b\u202e\u00e9\ufeff\ud7ff-.#', "NA", "NULL", "\r\n", "0x1F",
                              "00501", "9223372036854775808"])
csv_cell = st.lists(CSV_TOKENS, max_size=6).map("".join)
csv_text = st.lists(st.lists(csv_cell, min_size=1, max_size=6), min_size=1, max_size=30)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"]


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    rows = draw(csv_text)
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    text = "\n".join(sep.join(row) for row in rows) + draw(st.sampled_from(["", "\n", "\r\n"]))
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@st.composite
def json_bytes(draw: st.DrawFn) -> bytes:
    records = draw(st.lists(json_values, max_size=10))
    text = json.dumps(records)
    if draw(st.booleans()):  # a lone surrogate escape, huge numbers, deep nesting or trailing junk
        text = text[:-1] + draw(st.sampled_from([',{"a":"\\ud800"}', ",1e99999", ",[[[[[[[[[[[]]]]]]]]]]]", "] x",
                                                 ',{"a":1,"a":2}', ",", "]]"])) + "]"
    return text.encode()


@st.composite
def ndjson_bytes(draw: st.DrawFn) -> bytes:
    lines = [json.dumps(v) for v in draw(st.lists(json_values, max_size=10))]
    lines += draw(st.lists(st.sampled_from(["", "  ", "{", '{"a":"\\udfff"}', "[1]", '{"a":1}{"b":2}']), max_size=3))
    order = draw(st.permutations(lines))
    return "\n".join(order).encode()


@st.composite
def fixed_bytes(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.text(st.sampled_from(list("0123456789 AB\x1f\t\r\u00e9\x00")), max_size=14),
                          max_size=20))
    return "\n".join(lines).encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


CELL = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True), st.text(max_size=8), st.none(),
                 st.tuples(st.just("f"), st.text(max_size=8)), st.tuples(st.just("s"), st.integers(-2, 5)))


@st.composite
def xlsx_bytes(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.lists(CELL, max_size=5), max_size=8))
    numbers = draw(st.lists(st.integers(1, 1_048_576), min_size=len(rows), max_size=len(rows)))
    dimension = draw(st.sampled_from([None, "A1", "A1:XFD1048576", "A1:B2", "garbage", "ZZZZ0:A-1"]))
    pieces = [sheet_row(1, ["id", "v", "w"])] + [sheet_row(n, row) for n, row in zip(numbers, rows, strict=True)]
    if draw(st.booleans()):
        pieces.append(draw(st.sampled_from(["<row r='x'>", "<row r='2'><c r='A2' t='s'><v>99</v></c></row>",
                                            "<row r='3'><c r='A0'><v>1</v></c></row>", "</sheetData>", "&lol;"])))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.xlsx"
        shared = draw(st.lists(st.text(max_size=6).map(lambda t: f"<si><t>{_xml(t)}</t></si>"), max_size=3))
        xlsx(path, [("Sheet1", dimension, iter(pieces))], shared=iter(shared) if shared else None,
             shared_count=len(shared))
        return path.read_bytes()


def _xml(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or " " <= c <= "\ud7ff").replace("&", "&amp;").replace("<", "&lt;")


SEEDS = [b for b in (case.seed_bytes() for case in CASES) if b]


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """A corpus file with a few byte-level mutations: flips, inserts, deletions, duplicated or truncated spans."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "magic"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from([b'"', b"\xff\xfe", b"\xef\xbb\xbf", b"\r", b"\0", b"PK\x03\x04",
                                                b"\x1f\x8b", b"\\ud800", b"\xed\xa0\x80", b"\xc3"]))
    return bytes(data)


def _zipped(data: bytes, name: str) -> bytes:
    import io

    if not name:
        return raw_zip(b"", data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


# target: (strategy of bytes, delivered name, format)
TARGETS: dict[str, tuple[st.SearchStrategy[bytes], str, dict[str, Any]]] = {
    "csv-bytes": (st.binary(max_size=2048), "f.csv", {"type": "csv"}),
    "csv-text": (csv_bytes(), "f.csv", {"type": "csv"}),
    "json": (json_bytes() | st.binary(max_size=512), "f.json", {"type": "json"}),
    "ndjson": (ndjson_bytes() | st.binary(max_size=512), "f.ndjson", {"type": "ndjson"}),
    "xlsx": (xlsx_bytes(), "f.xlsx", {"type": "xlsx"}),
    "fixed-width": (fixed_bytes() | st.binary(max_size=512), "f.txt", TRAINS_LAYOUT),
    "zip-gzip": (st.tuples(csv_bytes(), st.sampled_from(["a.csv", "", "../x", "a\udcff"])).map(
        lambda t: _zipped(t[0], t[1].encode("utf-8", "surrogateescape").decode("utf-8", "replace")))
        | st.binary(max_size=256).map(lambda b: b"\x1f\x8b\x08\x00" + b), "f.dat", {"type": "auto"}),
    "corpus-mutations": (mutated_seed(), "f.dat", {"type": "auto"}),
}


def fuzz(name: str, seconds: float) -> dict[str, Any]:
    strategy, file_name, fmt = TARGETS[name]
    stats: dict[str, Any] = {"executions": 0, "crashes": [], "rounds": 0}
    deadline = time.monotonic() + seconds
    failing: list[bytes] = []
    while time.monotonic() < deadline:
        @seed(20261121 + stats["rounds"])
        @settings(max_examples=60, deadline=None, database=None, derandomize=False, print_blob=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
        @given(strategy)
        def prop(data: bytes) -> None:
            if time.monotonic() > deadline:  # the budget is spent: the round's remaining examples pass at once
                return
            stats["executions"] += 1
            try:
                engine_on(data, file_name, fmt)
            except BaseException:
                failing.append(data)
                raise

        stats["rounds"] += 1
        try:
            prop()
        except Exception as exc:
            minimal = failing[-1] if failing else b""
            digest = hashlib.sha256(minimal).hexdigest()[:12]
            CRASHES.mkdir(parents=True, exist_ok=True)
            saved = CRASHES / f"{name}-{digest}{Path(file_name).suffix}"
            saved.write_bytes(minimal)
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            if all(c["file"] != str(saved) for c in stats["crashes"]):
                stats["crashes"].append({"file": str(saved), "error": error, "input": repr(minimal[:200])})
            failing.clear()
    STATS[name] = stats
    return stats


@pytest.mark.timeout(0)
@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzz(target: str) -> None:
    stats = fuzz(target, TOTAL_SECONDS / len(TARGETS))
    print(f"\nfuzz {target}: {stats['executions']} executions in {stats['rounds']} rounds, "
          f"{len(stats['crashes'])} crashes")
    for crash in stats["crashes"]:
        print(f"  {crash['error']}\n    {crash['input']}\n    saved: {crash['file']}")
    assert not stats["crashes"], json.dumps(stats["crashes"], indent=1)

