"""Writes the sample PDFs by hand (no PDF library needed): a valid 3-page statement with one line of text per
page. Run: .venv/bin/python include/samples/pdfs/make_sample_pdf.py [out_dir] [pages]"""

from __future__ import annotations

import sys
from pathlib import Path


def minimal_pdf(texts: list[str]) -> bytes:
    """A PDF 1.4 with one page per text (Helvetica), correct xref offsets, readable by any viewer."""
    objects: list[bytes] = []
    n_pages = len(texts)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, text in enumerate(texts):
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 24 Tf 72 720 Td ({safe}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    texts = [f"Statement 2026-11-20, page {i + 1} of {pages}" for i in range(pages)]
    (folder / "statement_2026-11-20.pdf").write_bytes(minimal_pdf(texts))
    print(f"wrote {folder / 'statement_2026-11-20.pdf'} ({pages} pages)")


if __name__ == "__main__":
    main()
