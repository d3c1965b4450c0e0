"""Excel .xlsx read with openpyxl in read-only (streaming) mode: one worksheet, the first row as header, every
cell turned into text. Formula cells are never evaluated: their formula text is the value (and stays inert in
textual outputs, see filegate.pipeline.engine.inert).

The sheet's `<dimension>` is never trusted: openpyxl pads every row to the declared width and stops at the
declared last row, so a bogus `A1:XFD1048576` made a few sparse rows into billions of empty cells and an
understated `A1:B2` silently cut the sheet. The dimension is reset, each row is as wide as its last cell, the
cells read are counted against `format.max_cells`, and a row number past Excel's last row is refused."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa

from filegate.contracts.model import Format
from filegate.parsers.base import BadRow, ParseError, TextRows, check_header_names, shown
from filegate.parsers.source import open_zip

MAX_XML_RATIO = 200.0
# openpyxl holds the shared-string table whole, at about 6 bytes of memory per byte of its XML: past this size
# a workbook could take the worker past 1 GB whatever its rows.
MAX_SHARED_STRINGS_BYTES = 64 << 20
EXCEL_MAX_ROWS = 1_048_576
# openpyxl warns on stderr about parts it skips (no default style, unsupported extensions): those say nothing
# about the data, and a person reading a file's reason must not have to look past them.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _check_archive(path: Path, fmt: Format) -> None:
    """An .xlsx is a zip of XML parts: refuse bombs before openpyxl inflates anything."""
    with open_zip(path, "the .xlsx workbook (a zip archive)") as archive:
        members = archive.infolist()
        names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        raise ParseError("the zip archive is not an .xlsx workbook (no xl/workbook.xml)")
    total = sum(m.file_size for m in members)
    if total > fmt.max_uncompressed_bytes:
        raise ParseError(f"the workbook inflates to {total:,} bytes, more than {fmt.max_uncompressed_bytes:,}: "
                         "refused as a possible decompression bomb")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1 << 20 and ratio > max(fmt.max_compression_ratio, MAX_XML_RATIO):
            raise ParseError(f"{shown(member.filename, 120)} in the workbook inflates {ratio:,.0f}x: refused as a "
                             "possible decompression bomb")
    shared_strings = next((m for m in members if m.filename == "xl/sharedStrings.xml"), None)
    if shared_strings is not None and shared_strings.file_size > MAX_SHARED_STRINGS_BYTES:
        raise ParseError(f"the workbook's shared-string table is {shared_strings.file_size:,} bytes of XML, more than "
                         f"{MAX_SHARED_STRINGS_BYTES >> 20} MiB, which would be held in memory whole: export the "
                         "sheet as CSV (or split the workbook) for a table this large")


@dataclass
class XlsxReader:
    path: Path
    fmt: Format
    names: list[str] | None = None
    bad_rows: list[BadRow] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    def _rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        from openpyxl import load_workbook

        _check_archive(self.path, self.fmt)
        # A file object, not the path: openpyxl judges a path by its extension, and raw copies have none.
        handle = self.path.open("rb")
        try:
            workbook = load_workbook(handle, read_only=True, data_only=False)
        except Exception as exc:  # openpyxl raises many types for a broken workbook; all mean "unreadable"
            handle.close()
            raise ParseError(f"the workbook cannot be opened: {type(exc).__name__}: {exc}") from exc
        try:
            if self.fmt.sheet:
                if self.fmt.sheet not in workbook.sheetnames:
                    raise ParseError(f"the workbook has no sheet {self.fmt.sheet!r}; it has: "
                                     + ", ".join(workbook.sheetnames))
                sheet = workbook[self.fmt.sheet]
            else:
                sheet = workbook.worksheets[0]
            # Read-only worksheets take their size from <dimension>: forget it, read the real extent.
            sheet.reset_dimensions()
            cells, limit = 0, self.fmt.max_cells
            # Rows missing between two rows come out as empty tuples: cheap, and counted like any other row.
            for number, row in enumerate(sheet.iter_rows(min_row=1, min_col=1, values_only=True), start=1):
                if number > EXCEL_MAX_ROWS:
                    raise ParseError(f"the worksheet has a row numbered beyond {EXCEL_MAX_ROWS:,}, Excel's last "
                                     "row: the file was not written by a spreadsheet application, or is damaged")
                cells += len(row)
                if cells > limit:
                    raise ParseError(f"the worksheet holds more than {limit:,} cells (format.max_cells) by row "
                                     f"{number:,}: split the workbook, deliver it as CSV, or raise the limit")
                if number > self.fmt.skip_lines:
                    yield number, row
        except ParseError:
            raise
        except Exception as exc:
            raise ParseError(f"the workbook cannot be read: {type(exc).__name__}: {exc}") from exc
        finally:
            workbook.close()
            handle.close()

    def read_header(self) -> list[str]:
        for _, row in self._rows():
            cells = [cell_text(v).strip() for v in row]
            while cells and not cells[-1]:
                cells.pop()
            if not self.fmt.header:
                self.header = list(self.names) if self.names else [f"column_{i + 1}" for i in range(len(cells))]
            else:
                self.header = check_header_names(cells, self.fmt.max_columns)
            return self.header
        raise ParseError("the worksheet is empty")

    def batches(self) -> Iterator[pa.RecordBatch]:
        header = self.header or self.read_header()
        width = len(header)
        batched = TextRows(header)
        rows = self._rows()
        if self.fmt.header:
            next(rows, None)
        for number, row in rows:
            if len(row) > width:
                extra = row[width:]
                # tuple.count runs in C: a sparse row padded to a far cell costs no Python work per empty cell
                if extra.count(None) != len(extra) and any(cell_text(v) for v in extra if v is not None):
                    self.bad_rows.append(BadRow(number, f"expected {width} fields, found {len(row):,}",
                                                ",".join(cell_text(v) for v in row[:width + 50])[:500]))
                    continue
                row = row[:width]
            cells = [cell_text(v) for v in row]
            if not any(cells):
                continue
            cells += [""] * (width - len(cells))
            if (batch := batched.add(cells)) is not None:
                yield batch
        if (batch := batched.rest()) is not None:
            yield batch
