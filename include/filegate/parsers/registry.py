"""The format registry: `format.type` picks the reader; `auto` decides from the name and the first bytes.

Every reader yields text columns (exactly as written, after unquoting); typing is the shared casts' job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from filegate.contracts.model import Format
from filegate.parsers.base import DEFAULT_BLOCK_SIZE, ParseError, Reader
from filegate.parsers.csv_reader import CsvReader
from filegate.parsers.fixed_width import FixedWidthReader
from filegate.parsers.json_reader import JsonReader
from filegate.parsers.source import Prepared, detect_encoding, head_bytes, is_xlsx

ReaderFactory = Callable[[Path, Format, list[str] | None, int], Reader]


def _csv(path: Path, fmt: Format, names: list[str] | None, block_size: int) -> Reader:
    return CsvReader(path, fmt, block_size=block_size, names=names)


def _json(path: Path, fmt: Format, names: list[str] | None, block_size: int) -> Reader:
    return JsonReader(path, fmt, lines=False, names=names)


def _ndjson(path: Path, fmt: Format, names: list[str] | None, block_size: int) -> Reader:
    return JsonReader(path, fmt, lines=True, names=names)


def _fixed(path: Path, fmt: Format, names: list[str] | None, block_size: int) -> Reader:
    return FixedWidthReader(path, fmt, block_size=block_size)


def _xlsx(path: Path, fmt: Format, names: list[str] | None, block_size: int) -> Reader:
    from filegate.parsers.xlsx_reader import XlsxReader  # openpyxl is imported only for workbooks

    return XlsxReader(path, fmt, names=names)


READERS: dict[str, ReaderFactory] = {
    "csv": _csv,
    "tsv": _csv,
    "json": _json,
    "ndjson": _ndjson,
    "fixed_width": _fixed,
    "xlsx": _xlsx,
}
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".ndjson": "ndjson",
              ".jsonl": "ndjson", ".xlsx": "xlsx", ".xlsm": "xlsx", ".txt": "csv"}


def detect_format(prepared: Prepared) -> str:
    """For `format.type: auto` and the CLI: the extension if it is telling, else the first bytes."""
    if is_xlsx(prepared.path):
        return "xlsx"
    suffix = Path(prepared.name.lower()).suffix
    if suffix in EXTENSIONS and suffix != ".txt":
        return EXTENSIONS[suffix]
    sample = head_bytes(prepared.path, 4096)
    text = sample.decode(detect_encoding(sample), errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "ndjson"
    return "csv"


def resolve_format(fmt: Format, prepared: Prepared) -> Format:
    if fmt.type != "auto":
        return fmt
    return fmt.model_copy(update={"type": detect_format(prepared)})


def open_reader(prepared: Prepared, fmt: Format, *, names: list[str] | None = None,
                block_size: int | None = None) -> tuple[Reader, Format]:
    fmt = resolve_format(fmt, prepared)
    factory = READERS.get(fmt.type)
    if factory is None:
        raise ParseError(f"no reader for format {fmt.type!r}; known: {', '.join(sorted(READERS))}")
    return factory(prepared.path, fmt, names, block_size or DEFAULT_BLOCK_SIZE), fmt
