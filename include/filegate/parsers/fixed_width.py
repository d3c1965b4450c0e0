"""Fixed-width records (e.g. train movements from a mainframe export): pyarrow reads whole lines in blocks, and
each field is a vectorised slice of the line, trimmed. Lines too short or too long for the layout are bad rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from filegate.contracts.model import Format
from filegate.parsers.base import DEFAULT_BLOCK_SIZE, BadRow, ParseError, prefetch, size_text
from filegate.parsers.csv_reader import scan_rows
from filegate.parsers.source import detect_encoding, first_invalid_utf8, head_bytes, is_utf8, refuse_binary

LINE = "line"
# A byte that never appears in fixed-width text: with it as "delimiter", every physical line is one field.
NO_DELIMITER = "\x1f"


@dataclass
class FixedWidthReader:
    path: Path
    fmt: Format
    block_size: int = DEFAULT_BLOCK_SIZE
    bad_rows: list[BadRow] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    encoding: str = ""

    def read_header(self) -> list[str]:
        sample = head_bytes(self.path)
        self.encoding = detect_encoding(sample, self.fmt.encoding)
        refuse_binary(sample, self.encoding)
        self.header = [f.name for f in self.fmt.fields]
        return self.header

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        self.bad_rows.append(BadRow(row.number, "the record holds a control character 0x1f", row.text[:500]))
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        if not self.header:
            self.read_header()
        layout = sorted(self.fmt.fields, key=lambda f: f.start)
        shortest = layout[-1].start  # the last field may be blank and its trailing spaces trimmed away
        longest = layout[-1].end
        read_options = pacsv.ReadOptions(column_names=[LINE], skip_rows=self.fmt.skip_lines,
                                         block_size=self.block_size, use_threads=False,
                                         encoding="utf8" if is_utf8(self.encoding) else self.encoding)
        parse_options = pacsv.ParseOptions(delimiter=NO_DELIMITER, quote_char=False, double_quote=False,
                                           escape_char=False, newlines_in_values=False, ignore_empty_lines=True,
                                           invalid_row_handler=self._on_invalid_row)
        convert_options = pacsv.ConvertOptions(column_types={LINE: pa.string()}, strings_can_be_null=False)
        line_no = self.fmt.skip_lines

        def read() -> Iterator[pa.RecordBatch]:
            with pacsv.open_csv(self.path, read_options, parse_options, convert_options) as reader:
                yield from reader

        try:
            for batch in prefetch(read):
                lines = pc.utf8_rtrim(batch.column(0), characters="\r")
                first = line_no
                line_no += batch.num_rows
                length = pc.utf8_length(lines)
                too_short = pc.less(length, pa.scalar(shortest, length.type))
                content = pc.utf8_length(pc.utf8_rtrim_whitespace(lines))
                too_long = pc.greater(content, pa.scalar(longest, length.type))
                bad = pc.or_(too_short, too_long)
                if pc.any(bad).as_py():
                    self._report(lines, length, bad, first, shortest, longest)
                    lines = lines.filter(pc.invert(bad))
                if len(lines) == 0:
                    continue
                columns = [pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(lines, f.start - 1, f.end))
                           for f in self.fmt.fields]
                yield pa.RecordBatch.from_arrays(columns, names=self.header)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "utf8" in message.lower():
                where = first_invalid_utf8(self.path)
                if where:
                    raise ParseError(where.reason()) from exc
            if "straddl" in message.lower():
                raise ParseError(self._too_long(longest)) from exc
            raise ParseError(f"the file cannot be read as fixed-width records: {message}") from exc
        except UnicodeError as exc:  # a non-UTF-8 file is decoded by Python's codec, in the reader's thread
            raise ParseError(f"the file is not valid {self.encoding} text: {getattr(exc, 'reason', exc)}") from exc

    def _too_long(self, longest: int) -> str:
        """pyarrow cannot read a line longer than its block: a bounded scan names the line."""
        try:
            if is_utf8(self.encoding) or self.encoding in ("cp1252", "latin-1"):
                with self.path.open("rb") as fh:
                    found = scan_rows(fh, b"", None, self.block_size)
            else:
                with self.path.open("r", encoding=self.encoding, newline="") as fh:
                    found = scan_rows(fh, "", None, self.block_size)
        except (UnicodeError, OSError):
            found = None
        where = f"line {found[1]}" if found else "a line"
        return (f"{where} is longer than the read block ({size_text(self.block_size)}); the layout needs at most "
                f"{longest} characters: is this the right file, or are its line breaks missing?")

    def _report(self, lines: pa.Array, length: pa.Array, bad: pa.Array, first: int, shortest: int,
                longest: int) -> None:
        # pyarrow skips empty lines, so numbers count non-empty lines after skip_lines (exact for typical files).
        for i in pc.indices_nonzero(bad).to_pylist():
            n = length[i].as_py()
            need = f"at least {shortest}" if n < shortest else f"at most {longest}"
            self.bad_rows.append(BadRow(first + i + 1, f"the record is {n} characters long; the layout needs {need}",
                                        lines[i].as_py()[:500]))
