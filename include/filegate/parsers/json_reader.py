"""JSON arrays of objects and NDJSON (one object per line), streamed: values become text exactly as written
(numbers keep their literal digits, nested objects/arrays their JSON), so the shared casts judge them.

Two passes over the file keep memory bounded: the first collects the keys (the header), the second builds batches.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from filegate.contracts.model import Format
from filegate.parsers.base import BATCH_ROWS, BadRow, ParseError, check_header_names, text_batch
from filegate.parsers.source import detect_encoding, head_bytes, is_utf8, refuse_binary

READ_CHARS = 1 << 20
MAX_RECORD_CHARS = 64 << 20


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
        except UnicodeDecodeError as exc:
            raise ParseError(f"the file is not valid {self.encoding} text: {exc.reason}") from exc

    def _ndjson(self, fh: io.TextIOBase, report: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in enumerate(fh, start=1):
            if number <= self.fmt.skip_lines or not line.strip():
                continue
            try:
                value = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                if report:
                    self.bad_rows.append(BadRow(number, f"not valid JSON: {exc.msg} at column {exc.colno}", line[:500]))
                continue
            if not isinstance(value, dict):
                if report:
                    self.bad_rows.append(BadRow(number, f"a JSON object is expected, found {_kind(value)}", line[:500]))
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
                    if eof or len(buffer) - pos > MAX_RECORD_CHARS:
                        raise ParseError(f"record {number + 1} is not valid JSON: {exc.msg}") from exc
                    more = fh.read(READ_CHARS)
                    eof = not more
                    buffer, pos = buffer[pos:] + more, 0
            number += 1
            pos = end
            if not isinstance(value, dict):
                if report:
                    self.bad_rows.append(BadRow(number, f"record {number}: a JSON object is expected, found "
                                                f"{_kind(value)}", _dump(value)[:500]))
                continue
            yield number, value

    def read_header(self) -> list[str]:
        keys: dict[str, None] = dict.fromkeys(self.names or [])
        for _, record in self._records(report=False):
            for key in record:
                if key not in keys:
                    keys[key] = None
                    if len(keys) > self.fmt.max_columns:
                        break
        if not keys:
            raise ParseError("the file holds no JSON objects")
        self.header = check_header_names(list(keys), self.fmt.max_columns)
        return self.header

    def batches(self) -> Iterator[pa.RecordBatch]:
        header = self.header or self.read_header()
        columns: list[list[str]] = [[] for _ in header]
        known = set(header)
        rows = 0
        for number, record in self._records(report=True):
            unexpected = [k for k in record if k not in known]
            if unexpected:  # keys appear only after the header pass if the file changed meanwhile
                self.bad_rows.append(BadRow(number, f"unexpected key(s) {', '.join(unexpected[:5])}",
                                            _dump(record)[:500]))
                continue
            for values, name in zip(columns, header, strict=True):
                values.append(as_text(record.get(name)))
            rows += 1
            if rows == BATCH_ROWS:
                yield text_batch(header, columns)
                columns, rows = [[] for _ in header], 0
        if rows:
            yield text_batch(header, columns)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, _Number) else type(value).__name__)
