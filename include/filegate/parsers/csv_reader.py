"""Streaming CSV/TSV reader on pyarrow: every column read as text, bad rows captured, memory bounded.

The dialect (delimiter) and the encoding are detected from the first bytes unless the contract fixes them;
RFC 4180 quoting (embedded newlines, doubled quotes) and CRLF/LF/CR line ends are pyarrow's.

Nothing here splits a line of unknown length: the header is found in one read of at most a block, its fields
counted (quote-aware) before any list is built, so one enormous line is refused in a few MB; pyarrow refuses a
row longer than its read block, and a bounded scan then names the line (or the quote that never closes).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import mmap
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from filegate.contracts.model import Format
from filegate.parsers.base import (
    DEFAULT_BLOCK_SIZE,
    BadRow,
    ParseError,
    check_header_names,
    coalesce,
    prefetch,
    size_text,
)
from filegate.parsers.source import detect_encoding, first_invalid_utf8, head_bytes, is_utf8, refuse_binary

__all__ = ["BadRow", "CsvReader", "ParseError", "sniff_delimiter"]

log = logging.getLogger(__name__)
DELIMITERS = [",", ";", "\t", "|"]
LOCATE_BAD_ROWS = 100  # physical line numbers are looked up for this many ragged rows
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long field is judged by the rules, not refused here
QUOTE_SCAN_TAIL = 200  # characters of the last multi-line ragged row kept, to tell whether it ends the file


def _undecodable_row_hook(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """pyarrow decodes an invalid row's text before calling the reader's handler, and only prints (as an
    "Exception ignored" traceback) when that text is not UTF-8. The reader notes it and explains it instead."""

    def hook(unraisable: Any) -> object:
        owner = getattr(unraisable.object, "__self__", None)
        if isinstance(owner, CsvReader) and issubclass(unraisable.exc_type, UnicodeDecodeError):
            owner.undecodable_row = True
            return None
        return previous(unraisable)

    hook.filegate = True  # type: ignore[attr-defined]
    return hook


def sniff_delimiter(text: str, quote_char: str = '"') -> str:
    """The candidate that splits the first lines into the same number (>1) of fields most consistently."""
    lines = text.splitlines()[:50]
    if len(text) >= 60_000 and len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=candidate, quotechar=quote_char) if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for n in counts if n == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = candidate, score
    return best


@dataclass
class CsvReader:
    """Reads one delimited file in batches. `bad_rows` collects rows with the wrong number of fields."""

    path: Path
    fmt: Format
    block_size: int = DEFAULT_BLOCK_SIZE
    names: list[str] | None = None  # header: false → the contract's column names
    bad_rows: list[BadRow] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""
    undecodable_row: bool = False  # a ragged row's text was not valid UTF-8 (pyarrow could not hand it over)
    multiline_tail: str = ""  # the end of the latest ragged row that spans lines: a quote left open at EOF?

    def _sniff(self) -> None:
        if self.encoding:
            return
        sample = head_bytes(self.path)
        if not sample:
            raise ParseError("the file is empty (0 bytes)")
        self.encoding = detect_encoding(sample, self.fmt.encoding)
        refuse_binary(sample, self.encoding)
        text = sample.decode(self.encoding, errors="replace").lstrip("\ufeff")
        if self.fmt.delimiter:
            self.delimiter = self.fmt.delimiter
        elif self.fmt.type == "tsv":
            self.delimiter = "\t"
        else:
            self.delimiter = sniff_delimiter(text, self.fmt.quote_char)

    def _open_text(self) -> io.TextIOBase:
        encoding = "utf-8-sig" if is_utf8(self.encoding) else self.encoding
        return self.path.open("r", encoding=encoding, newline="")  # type: ignore[return-value]

    def read_header(self) -> list[str]:
        self._sniff()
        wanted = self.fmt.skip_lines + 1
        try:
            # One bounded read: pyarrow cannot read a header row longer than its block either.
            with self.path.open("rb") as fh:
                raw = fh.read(self.block_size + 1)
            encoding = "utf-8-sig" if is_utf8(self.encoding) else self.encoding
            broken: UnicodeError | None = None
            try:
                text = codecs.getincrementaldecoder(encoding)().decode(raw)
            except UnicodeDecodeError as exc:  # past the header, it is the data's problem (and reason)
                broken = exc
                text = codecs.getincrementaldecoder(encoding)().decode(raw[:exc.start])
            end, fields = record_ends(text, wanted, self.delimiter, self.fmt.quote_char)
            if end is None and broken is not None:
                raise broken
            self._check_head(text, end, fields, wanted, len(raw))
            rows = csv.reader(io.StringIO(text if end is None else text[:end]), delimiter=self.delimiter,
                              quotechar=self.fmt.quote_char)
            for _ in range(self.fmt.skip_lines):
                next(rows, None)
            row = next(rows, None)
        except UnicodeError as exc:
            raise ParseError(f"the header is not valid {self.encoding} text: {getattr(exc, 'reason', exc)}") from exc
        except (csv.Error, OSError) as exc:
            raise ParseError(f"cannot read the header: {exc}") from exc
        if row is None:
            raise ParseError("the file has no lines" + (f" after skipping {self.fmt.skip_lines}"
                                                        if self.fmt.skip_lines else ""))
        if not self.fmt.header:
            width = len(row)
            self.header = list(self.names) if self.names else [f"column_{i + 1}" for i in range(width)]
            return self.header
        if all(not cell.strip() for cell in row):
            raise ParseError("the first line is blank: a header row is expected")
        self.header = check_header_names([cell.strip().lstrip("\ufeff") for cell in row], self.fmt.max_columns)
        return self.header

    def _check_head(self, text: str, end: int | None, fields: list[int], wanted: int, read: int) -> None:
        """The header's width is judged from its delimiters before the line is split; then its length."""
        what = "the header" if self.fmt.header else "the first row"
        limit = self.fmt.max_columns
        width_from_file = self.fmt.header or not self.names
        if width_from_file and len(fields) == wanted and fields[-1] > limit:
            if end is not None or read <= self.block_size:
                raise ParseError(f"{what} has {fields[-1]:,} columns, more than the limit of {limit:,} "
                                 "(format.max_columns): is this the right file, or is it one enormous line?")
            raise ParseError(f"{what} has more than {limit:,} columns, the limit (format.max_columns): "
                             f"{fields[-1]:,} fields in its first {size_text(self.block_size)} alone; is this the "
                             "right file, or is it one enormous line?")
        if end is None and read > self.block_size:
            raise ParseError(f"{what} (line {self.fmt.skip_lines + 1} or before) is longer than the read block "
                             f"({size_text(self.block_size)}): a quoted field is probably never closed, or the line "
                             "is enormous")

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        if "\n" in row.text or "\r" in row.text:
            self.multiline_tail = row.text[-QUOTE_SCAN_TAIL:]
        self.bad_rows.append(
            # pyarrow's row.number is unreliable once values may hold newlines: lines come from _locate_bad_rows.
            BadRow(line=None, reason=f"expected {row.expected_columns} fields, found {row.actual_columns}",
                   text=row.text[:500])
        )
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        header = self.header or self.read_header()
        read_options = pacsv.ReadOptions(
            column_names=header,
            skip_rows=self.fmt.skip_lines + (1 if self.fmt.header else 0),
            block_size=self.block_size,
            encoding="utf8" if is_utf8(self.encoding) else self.encoding,
            use_threads=False,  # parsed in prefetch()'s thread, a bounded number of blocks ahead
        )
        parse_options = pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char=self.fmt.quote_char,
            newlines_in_values=True,
            invalid_row_handler=self._on_invalid_row,
        )
        convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        def read() -> Iterator[pa.RecordBatch]:
            # An explicit OSFile: a path would be memory-mapped, and every page read stays in our RSS.
            with pa.OSFile(str(self.path), "rb") as raw, \
                    pacsv.open_csv(raw, read_options, parse_options, convert_options) as reader:
                yield from coalesce(reader)

        last: pa.RecordBatch | None = None
        try:
            for batch in prefetch(read):
                if batch.num_rows:
                    last = batch
                    yield batch
        except pa.ArrowInvalid as exc:
            if "could not skip initial" in str(exc).lower() and self.path.stat().st_size <= self.block_size:
                return  # the header is the whole file (no final line break): no data rows, as with one
            raise ParseError(self._explain(str(exc))) from exc
        except UnicodeDecodeError as exc:
            raise ParseError(f"the file is not valid {self.encoding} text: {exc.reason} at byte {exc.start}") from exc
        except UnicodeError as exc:
            raise ParseError(f"the file is not valid {self.encoding} text: {exc}") from exc
        if (last is not None and _ends_inside_quotes(last)) or self._ragged_row_ends_file() \
                or self._last_line_has_odd_quotes():
            line = self._unclosed_quote_line()
            if line is not None:
                raise ParseError(f"a quoted field opened on line {line} is never closed (unterminated quote): "
                                 "the rest of the file would be read as one value")
        self._locate_bad_rows()

    def _ragged_row_ends_file(self) -> bool:
        """A quote opened and never closed makes the rest of the file one ragged row: its end is the file's."""
        if not self.multiline_tail:
            return False
        tail = self.multiline_tail.rstrip("\r\n").encode(self.encoding, errors="replace")
        size = self.path.stat().st_size
        with self.path.open("rb") as fh:
            fh.seek(max(0, size - len(tail) - 8))
            return fh.read().rstrip(b"\r\n").endswith(tail)

    def _last_line_has_odd_quotes(self) -> bool:
        """pyarrow closes a quote left open at the very end of a file without a final line break (`2,"open`
        reads as `open`): an odd number of quote characters on the last line sends the file to the full scan."""
        if not (is_utf8(self.encoding) or self.encoding in ("cp1252", "latin-1")):
            return False
        size = self.path.stat().st_size
        with self.path.open("rb") as fh:
            fh.seek(max(0, size - self.block_size))
            tail = fh.read()
        if tail.endswith((b"\n", b"\r")):
            return False  # a value left open would then hold that line break: _ends_inside_quotes sees it
        last_line = tail.rsplit(b"\n", 1)[-1]
        return last_line.count(self.fmt.quote_char.encode()) % 2 == 1

    def _explain(self, message: str) -> str:
        lowered = message.lower()
        if self.undecodable_row or "utf8" in lowered or "utf-8" in lowered:
            where = first_invalid_utf8(self.path)
            if where:
                return where.reason()
            return f"the file is not valid UTF-8 text: {message}"
        if "straddl" in lowered or "block" in lowered:
            found = self._scan()
            if found is not None and found[0] == "open":
                return (f"a quoted field opened on line {found[1]} is never closed (unterminated quote): the rest "
                        "of the file would be read as one value")
            if found is not None:
                return (f"line {found[1]} starts a row longer than the read block ({size_text(self.block_size)}), "
                        "which cannot be read: a value that long (or a line that long) does not belong in a "
                        "delimited file; deliver such data in another form")
            return (f"a row is longer than the read block ({size_text(self.block_size)}): a quoted field is "
                    "probably never closed, or a line is enormous")
        if "quote" in lowered:
            return f"a quoted field is never closed: {message}"
        return f"the file cannot be parsed as delimited text: {message}"

    def _unclosed_quote_line(self) -> int | None:
        found = self._scan()
        return found[1] if found is not None and found[0] == "open" else None

    def _scan(self) -> tuple[str, int] | None:
        """("open", line) for a quote opened on that line and never closed, ("long", line) for the first row
        longer than the read block, else None: a bounded scan, never a whole value in memory."""
        try:
            if is_utf8(self.encoding) or self.encoding in ("cp1252", "latin-1"):  # bytes: the block's unit
                with self.path.open("rb") as fh:
                    return scan_rows(fh, self.delimiter.encode(), self.fmt.quote_char.encode(), self.block_size)
            with self._open_text() as fh:
                return scan_rows(fh, self.delimiter, self.fmt.quote_char, self.block_size)
        except (UnicodeError, OSError):
            return None

    def _locate_bad_rows(self) -> None:
        """pyarrow cannot number rows when values may hold newlines; find the first few ragged rows' lines."""
        if not self.bad_rows or (not is_utf8(self.encoding) and self.encoding not in {"cp1252", "latin-1"}):
            return
        with self.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            position, line = 0, 1
            for bad in self.bad_rows[:LOCATE_BAD_ROWS]:
                if bad.line is not None or not bad.text:
                    continue
                needle = bad.text.encode(self.encoding, errors="ignore")
                found = _find_at_line_start(data, needle, position)
                if found < 0:
                    continue
                line += data[position:found].count(b"\n")
                bad.line, position = line, found


def _find_at_line_start(data: mmap.mmap, needle: bytes, position: int) -> int:
    """The row's text must start a line: a short ragged row ("1,2") also occurs inside longer rows ("11,2,x")."""
    while True:
        found = data.find(needle, position)
        if found <= 0 or data[found - 1:found] in (b"\n", b"\r"):
            return found
        position = found + 1


def record_ends(text: str, count: int, delimiter: str, quote: str) -> tuple[int | None, list[int]]:
    """Where the first `count` records of `text` end (None: not within `text`), and each one's number of fields.

    Quote-aware like the csv module (a quote opens a quoted field only at the start of a field); work is per
    quote and per line, delimiters are counted in C, and nothing is split."""
    specials = re.compile(f"[{re.escape(quote)}\r\n]")
    fields: list[int] = []
    pos = start = 0
    width = 1
    while True:
        found = specials.search(text, pos)
        at = found.start() if found else len(text)
        width += text.count(delimiter, pos, at)
        if found is None:
            return None, [*fields, width]
        if text[at] == quote:
            pos = at + 1
            if at == start or text[at - 1] == delimiter:
                close = _closing_quote(text, pos, quote)
                if close is None:
                    return None, [*fields, width]
                pos = close + 1
            continue
        end = at + 1
        if text[at] == "\r" and text[end:end + 1] == "\n":
            end += 1
        fields.append(width)
        if len(fields) == count:
            return end, fields
        pos = start = end
        width = 1


def _closing_quote(text: str, pos: int, quote: str) -> int | None:
    while True:
        found = text.find(quote, pos)
        if found < 0:
            return None
        if text[found + 1:found + 2] != quote:
            return found
        pos = found + 2


def scan_rows(fh: Any, delimiter: Any, quote: Any, block: int, piece_size: int = 0) -> tuple[str, int] | None:
    """Reads `fh` (bytes or text) in pieces of `block`: ("open", line) when a quote opened on `line` is never
    closed, ("long", line) for the first row (starting on `line`) longer than `block`, else None. `quote` None:
    no quoting (fixed-width lines). Work is per quote and per piece, never per line or per field: a line inside
    one piece is shorter than the piece, so only the lines that cross pieces are measured."""
    piece_size = min(piece_size or block, block)
    empty = fh.read(0)
    newline, cr = ("\n", "\r") if isinstance(empty, str) else (b"\n", b"\r")
    line = record_line = quote_line = 1
    record = 0  # length of the current row so far
    in_quotes = pending = False  # pending: inside quotes, the last piece ended on a quote
    previous = empty
    while piece := fh.read(piece_size):
        pos, size = 0, len(piece)
        if pending:
            pending = False
            if piece[:1] == quote:
                pos, record = 1, record + 1
            else:
                in_quotes = False
        while pos < size:
            if in_quotes:
                close = piece.find(quote, pos)
                stop = size if close < 0 else close + 1
                line += piece.count(newline, pos, stop)
                record += stop - pos
                pos = stop
                if close < 0:
                    break
                if close + 1 == size:
                    pending = True
                elif piece[close + 1:close + 2] == quote:
                    pos, record = pos + 1, record + 1
                else:
                    in_quotes = False
                continue
            opening = piece.find(quote, pos) if quote else -1
            stop = size if opening < 0 else opening
            lines = piece.count(newline, pos, stop)
            if lines:
                if record + piece.find(newline, pos, stop) - pos > block:
                    return "long", record_line
                line += lines
                record_line = line
                record = stop - piece.rfind(newline, pos, stop) - 1
            else:
                record += stop - pos
            if record > block:
                return "long", record_line
            if opening < 0:
                break
            before = piece[opening - 1:opening] if opening else previous
            if before in (delimiter, newline, cr, empty):
                in_quotes, quote_line = True, line
            record += 1
            pos = opening + 1
        previous = piece[-1:]
    if in_quotes and not pending:
        return "open", quote_line
    return ("long", record_line) if record > block else None


def _ends_inside_quotes(batch: pa.RecordBatch) -> bool:
    """A value of the very last row holding a line break hints at a quote opened and never closed."""
    for column in batch.columns:
        value = column[batch.num_rows - 1].as_py()
        if value and ("\n" in value or "\r" in value):
            return True
    return False


if not getattr(sys.unraisablehook, "filegate", False):
    sys.unraisablehook = _undecodable_row_hook(sys.unraisablehook)
