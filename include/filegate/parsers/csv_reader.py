"""Streaming CSV/TSV reader on pyarrow: every column read as text, bad rows captured, memory bounded."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from filegate.contracts.model import Format

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_BLOCK_SIZE = 4 << 20


class ParseError(ValueError):
    """The file as a whole cannot be read; the message says why in terms a person can act on."""


@dataclass
class BadRow:
    line: int | None
    reason: str
    text: str


@dataclass
class CsvReader:
    """Reads one delimited file in batches. `bad_rows` collects rows with the wrong number of fields."""

    path: Path
    fmt: Format
    block_size: int = DEFAULT_BLOCK_SIZE
    bad_rows: list[BadRow] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    @property
    def delimiter(self) -> str:
        return self.fmt.delimiter or ("\t" if self.fmt.type == "tsv" else ",")

    def _compression(self) -> str | None:
        with self.path.open("rb") as fh:
            return "gzip" if fh.read(2) == GZIP_MAGIC else None

    def _open_text(self) -> io.TextIOBase:
        is_utf8 = self.fmt.encoding.lower().replace("_", "-") in {"utf-8", "utf8"}
        encoding = "utf-8-sig" if is_utf8 else self.fmt.encoding
        if self._compression() == "gzip":
            return gzip.open(self.path, "rt", encoding=encoding, newline="")  # type: ignore[return-value]
        return self.path.open("r", encoding=encoding, newline="")

    def read_header(self) -> list[str]:
        if self.path.stat().st_size == 0:
            raise ParseError("the file is empty (0 bytes)")
        try:
            with self._open_text() as fh:
                row = next(csv.reader(fh, delimiter=self.delimiter, quotechar=self.fmt.quote_char), None)
        except UnicodeDecodeError as exc:
            raise ParseError(f"the header is not valid {self.fmt.encoding} text: {exc.reason}") from exc
        except (csv.Error, OSError, EOFError) as exc:
            raise ParseError(f"cannot read the header: {exc}") from exc
        if not row or all(not cell.strip() for cell in row):
            raise ParseError("the first line is blank: a header row is expected")
        header = [cell.strip() for cell in row]
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise ParseError(f"duplicate column names in the header: {', '.join(duplicates)}")
        if any(not name for name in header):
            raise ParseError(f"the header has an empty column name (position {header.index('') + 1})")
        self.header = header
        return header

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        self.bad_rows.append(
            BadRow(
                line=row.number,
                reason=f"expected {row.expected_columns} fields, found {row.actual_columns}",
                text=row.text[:500],
            )
        )
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        header = self.header or self.read_header()
        read_options = pacsv.ReadOptions(
            column_names=header,
            skip_rows=1,
            block_size=self.block_size,
            encoding=self.fmt.encoding if self.fmt.encoding.lower() not in {"utf-8", "utf8"} else "utf8",
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
        source = pa.input_stream(str(self.path), compression=self._compression())
        try:
            reader = pacsv.open_csv(source, read_options, parse_options, convert_options)
            for batch in reader:
                if batch.num_rows:
                    yield batch
        except pa.ArrowInvalid as exc:
            raise ParseError(_explain_arrow_error(str(exc))) from exc
        finally:
            source.close()


def _explain_arrow_error(message: str) -> str:
    if "unterminated" in message.lower() or "quote" in message.lower():
        return f"a quoted field is never closed: {message}"
    if "utf8" in message.lower() or "utf-8" in message.lower():
        return f"the file is not valid UTF-8 text: {message}"
    return f"the file cannot be parsed as CSV: {message}"
