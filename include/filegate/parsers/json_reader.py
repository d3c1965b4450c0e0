"""JSON arrays of objects and NDJSON (one object per line), streamed: values become text exactly as written
(numbers keep their literal digits, nested objects/arrays their JSON), so the shared casts judge them.

Two passes over the file keep memory bounded: the first collects the keys (the header), the second builds batches.
No record is held beyond `format.max_record_bytes`: an NDJSON line is read in bounded pieces and, past the limit,
skipped to its end (a rejected row); a JSON array element past it refuses the file. Batches flush at BATCH_ROWS
rows or BATCH_BYTES of text, whichever comes first.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from filegate.contracts.model import Format
from filegate.parsers.base import BadRow, ParseError, TextRows, check_header_names, shown, size_text
from filegate.parsers.source import detect_encoding, head_bytes, is_utf8, refuse_binary

READ_CHARS = 1 << 20
PREVIEW_CHARS = 60
# A \uXXXX escape of a surrogate: only then can a decoded value hold a lone surrogate (which no UTF-8 output can
# carry), so only records with one are checked value by value.
SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")
TOO_DEEP = "nested too deeply (hundreds of levels of arrays or objects)"


class _Number(str):
    """A JSON number kept as its literal text."""


_DECODER = json.JSONDecoder(parse_float=_Number, parse_int=_Number, parse_constant=_Number)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return value
    return _dump(value)


def _dump(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, _Number):
        return str.__str__(value)
    return json.dumps(value, ensure_ascii=False)


@dataclass
class JsonReader:
    path: Path
    fmt: Format
    lines: bool  # True: NDJSON
    names: list[str] | None = None
    bad_rows: list[BadRow] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    encoding: str = ""
    first_problem: str = ""  # why the first unreadable record was skipped, for "no JSON objects"

    def _open(self) -> io.TextIOBase:
        if not self.encoding:
            sample = head_bytes(self.path)
            self.encoding = detect_encoding(sample, self.fmt.encoding)
            refuse_binary(sample, self.encoding)
        encoding = "utf-8-sig" if is_utf8(self.encoding) else self.encoding
        return self.path.open("r", encoding=encoding, errors="strict")  # type: ignore[return-value]

    def _records(self, report: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line or record number, object) pairs; broken records become bad rows when `report`."""
        try:
            with self._open() as fh:
                yield from (self._ndjson(fh, report) if self.lines else self._array(fh, report))
        except UnicodeError as exc:
            raise ParseError(f"the file is not valid {self.encoding} text: {getattr(exc, 'reason', exc)}") from exc

    def _lines(self, fh: io.TextIOBase, report: bool) -> Iterator[tuple[int, str]]:
        """(line number, text) of every line within the record limit; longer lines are skipped in bounded reads.

        The limit is counted in characters of the decoded text: a line of more characters than
        max_record_bytes is certainly more bytes than that, and never more than that many are held."""
        limit = self.fmt.max_record_bytes
        number = 0
        while line := fh.readline(limit + 1):
            number += 1
            if len(line) <= limit or line.endswith("\n"):
                yield number, line
                continue
            size = len(line) + _skip_line(fh)
            if report and number > self.fmt.skip_lines:
                self.bad_rows.append(BadRow(number, f"the record is larger than {size_text(limit)} "
                                            f"(format.max_record_bytes): {size:,} characters, starting "
                                            f"{shown(line[:PREVIEW_CHARS])}…", _safe(line[:500])))

    def _ndjson(self, fh: io.TextIOBase, report: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in self._lines(fh, report):
            if number <= self.fmt.skip_lines or not line.strip():
                continue
            try:
                value = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                if report:
                    self.bad_rows.append(BadRow(number, f"not valid JSON: {exc.msg} at column {exc.colno}", line[:500]))
                continue
            except RecursionError:
                if report:
                    self.bad_rows.append(BadRow(number, f"the record is {TOO_DEEP}", line[:500]))
                continue
            if not isinstance(value, dict):
                if report:
                    self.bad_rows.append(BadRow(number, f"a JSON object is expected, found {_kind(value)}", line[:500]))
                continue
            problem = _unwritable(value, line)
            if problem:
                self.first_problem = self.first_problem or f"line {number} {problem}"
                if report:
                    self.bad_rows.append(BadRow(number, problem, _safe(line[:500])))
                continue
            yield number, value

    def _array(self, fh: io.TextIOBase, report: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        buffer = fh.read(READ_CHARS)
        pos = _skip_space(buffer, 0)
        if pos >= len(buffer):
            raise ParseError("the file holds only whitespace: a JSON array of objects is expected")
        if buffer[pos] != "[":
            raise ParseError(f"a JSON array of objects is expected; the file starts with {buffer[pos:pos + 20]!r}"
                             + (" (one object per line? use format.type ndjson)" if buffer[pos] == "{" else ""))
        pos += 1
        number = 0
        eof = False
        limit = self.fmt.max_record_bytes
        while True:
            pos = _skip_space(buffer, pos)
            while pos >= len(buffer) and not eof:
                more = fh.read(READ_CHARS)
                eof = not more
                buffer, pos = buffer[pos:] + more, 0
                pos = _skip_space(buffer, pos)
            if pos >= len(buffer):
                raise ParseError(f"the JSON array is not closed: the file ends after {number} records")
            if buffer[pos] == "]":
                _nothing_after(fh, buffer, pos + 1)
                return
            if number and buffer[pos] == ",":
                pos = _skip_space(buffer, pos + 1)
            elif number:
                raise ParseError(f"after record {number}, ',' or ']' is expected, found {buffer[pos:pos + 20]!r}")
            while True:
                try:
                    value, end = _DECODER.raw_decode(buffer, pos)
                    break
                except json.JSONDecodeError as exc:
                    held = len(buffer) - pos
                    if not eof and held > limit and _cut_short(exc, buffer):
                        raise self._too_large(number + 1) from exc
                    if eof or held > limit:
                        raise ParseError(f"record {number + 1} is not valid JSON: {exc.msg}") from exc
                    # Reads grow with the record (few decode attempts on a big one) but never past the limit.
                    more = fh.read(max(READ_CHARS, min(held, limit + 1 - held)))
                    eof = not more
                    buffer, pos = buffer[pos:] + more, 0
                except RecursionError as exc:
                    raise ParseError(f"record {number + 1} is {TOO_DEEP}") from exc
            if end - pos > limit:
                raise self._too_large(number + 1)
            number += 1
            text = buffer[pos:end]
            pos = end
            if not isinstance(value, dict):
                if report:
                    self.bad_rows.append(BadRow(number, f"record {number}: a JSON object is expected, found "
                                                f"{_kind(value)}", _safe(text[:500])))
                continue
            problem = _unwritable(value, text)
            if problem:
                self.first_problem = self.first_problem or f"record {number} {problem}"
                if report:
                    self.bad_rows.append(BadRow(number, f"record {number}: {problem}", _safe(text[:500])))
                continue
            yield number, value

    def _too_large(self, number: int) -> ParseError:
        return ParseError(f"record {number} is larger than {size_text(self.fmt.max_record_bytes)}, the limit for one "
                          "JSON record (format.max_record_bytes): a JSON array cannot be read past it")

    def read_header(self) -> list[str]:
        keys: dict[str, None] = dict.fromkeys(self.names or [])
        for _, record in self._records(report=False):
            for key in record:
                if key not in keys:
                    keys[key] = None
                    if len(keys) > self.fmt.max_columns:
                        break
        if not keys:
            raise ParseError("the file holds no JSON objects" + (f" that can be read: {self.first_problem}"
                                                                 if self.first_problem else ""))
        self.header = check_header_names(list(keys), self.fmt.max_columns)
        return self.header

    def batches(self) -> Iterator[pa.RecordBatch]:
        header = self.header or self.read_header()
        rows = TextRows(header)
        known = set(header)
        for number, record in self._records(report=True):
            unexpected = [k for k in record if k not in known]
            if unexpected:  # keys appear only after the header pass if the file changed meanwhile
                self.bad_rows.append(BadRow(number, f"unexpected key(s) {', '.join(unexpected[:5])}",
                                            _dump(record)[:500]))
                continue
            try:
                cells = [as_text(record.get(name)) for name in header]
            except RecursionError:
                self.bad_rows.append(BadRow(number, f"the record is {TOO_DEEP}", ""))
                continue
            if (batch := rows.add(cells)) is not None:
                yield batch
        if (batch := rows.rest()) is not None:
            yield batch


def _nothing_after(fh: io.TextIOBase, buffer: str, pos: int) -> None:
    """Only whitespace may follow the array: `[...] garbage` is a broken file, not a valid one."""
    while True:
        pos = _skip_space(buffer, pos)
        if pos < len(buffer):
            raise ParseError(f"the JSON array is followed by more data ({buffer[pos:pos + 20]!r}): one JSON array of "
                             "objects is expected, and nothing after it")
        buffer, pos = fh.read(READ_CHARS), 0
        if not buffer:
            return


def _skip_line(fh: io.TextIOBase) -> int:
    """Reads on to the end of the current line in bounded pieces; returns how many characters were skipped."""
    skipped = 0
    while piece := fh.readline(READ_CHARS):
        skipped += len(piece)
        if piece.endswith("\n"):
            break
    return skipped


def _cut_short(exc: json.JSONDecodeError, buffer: str) -> bool:
    """The decoder failed because the buffer ended inside the record, not because the record is broken."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(buffer) - 1


def _unwritable(record: dict[str, Any], text: str) -> str | None:
    """Why the record cannot become text (a lone surrogate, nesting too deep for its JSON), else None."""
    try:
        if SURROGATE_ESCAPE.search(text):
            _dump(record).encode("utf-8")
        return None
    except UnicodeEncodeError:
        return ("holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), which is not a "
                "character")
    except RecursionError:
        return f"the record is {TOO_DEEP}"


def _safe(text: str) -> str:
    """A rejected record's text as it can be written out (lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, _Number) else type(value).__name__)
