"""Splits one PDF into new PDFs by a page map ({"part1": [0, 1], "part2": [2]}, pages counted from 0).

Pure: a local PDF in, local PDFs out. A document that cannot be split (corrupt, encrypted, a page map that
does not fit) raises PdfRejected with a message a person can act on; the file then ends quarantined.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_PARTS = 1000


class PdfRejected(ValueError):
    """The PDF or its page map cannot be used; the message says why."""


@dataclass(frozen=True)
class PdfPart:
    name: str
    pages: list[int]
    path: Path
    bytes: int

    @property
    def page_count(self) -> int:
        return len(self.pages)


@dataclass(frozen=True)
class PdfSplit:
    pages_total: int
    parts: list[PdfPart] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"pages_total": self.pages_total,
                "parts": {p.name: {"pages": p.pages, "page_count": p.page_count, "bytes": p.bytes}
                          for p in self.parts}}


def parse_page_map(value: Any) -> dict[str, list[int]]:
    """Checks a page map given with an upload; part names become file names, so they must be safe."""
    if not isinstance(value, dict) or not value:
        raise PdfRejected('the upload carries no page map: give params {"page_map": {"part1": [0, 1], ...}}')
    if len(value) > MAX_PARTS:
        raise PdfRejected(f"the page map has {len(value)} parts; at most {MAX_PARTS} are allowed")
    pages: dict[str, list[int]] = {}
    for name, indexes in value.items():
        if not isinstance(name, str) or not PART_NAME.match(name):
            raise PdfRejected(f"page map part name {name!r} must be letters, digits, '.', '_' or '-' "
                              "(up to 100, starting with a letter or digit)")
        if (not isinstance(indexes, list) or not indexes
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indexes)):
            raise PdfRejected(f"page map part {name!r} must list page numbers (0-based integers), got {indexes!r}")
        pages[name] = list(indexes)
    return pages


def split_pdf(source: Path, page_map: dict[str, list[int]], out_dir: Path) -> PdfSplit:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError, PyPdfError

    head = source.read_bytes()[:1024] if source.stat().st_size else b""
    if b"%PDF-" not in head:
        raise PdfRejected("the file is not a PDF (no %PDF- header in its first 1 KB)")
    try:
        reader = PdfReader(source, strict=False)
        if reader.is_encrypted:
            raise PdfRejected("the PDF is encrypted (password-protected): Filegate cannot read its pages; "
                              "ask the sender for an unencrypted copy")
        pages_total = len(reader.pages)
    except PdfRejected:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise PdfRejected(f"the PDF is damaged and cannot be read: {type(exc).__name__}: {exc}") from exc
    if pages_total == 0:
        raise PdfRejected("the PDF has no pages")
    for name, indexes in page_map.items():
        beyond = [i for i in indexes if i >= pages_total]
        if beyond:
            raise PdfRejected(f"page map part {name!r} asks for page(s) {beyond} but the PDF has {pages_total} "
                              f"page(s), numbered 0 to {pages_total - 1}")
    parts = []
    for name, indexes in page_map.items():
        writer = PdfWriter()
        try:
            for index in indexes:
                writer.add_page(reader.pages[index])
            path = out_dir / f"{name}.pdf"
            with path.open("wb") as out:
                writer.write(out)
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PdfRejected(f"page(s) {indexes} of the PDF are damaged: {type(exc).__name__}: {exc}") from exc
        parts.append(PdfPart(name, list(indexes), path, path.stat().st_size))
        log.info("part %s: %d page(s), %d bytes", name, len(indexes), parts[-1].bytes)
    return PdfSplit(pages_total, parts)
