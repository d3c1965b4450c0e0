"""filegate-split-pdf called directly with its event fixture, against moto's S3."""

from __future__ import annotations

import io
import json
import runpy
from pathlib import Path

from lambda_support import Context
from pypdf import PdfReader, PdfWriter

from filegate.functions.events import example
from filegate.lambdas import split_pdf

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "include" / "samples" / "pdfs" / "statement_2026-11-20.pdf"


def _event(s3, data: bytes, **change) -> dict:
    event = {**example("split_pdf"), **change}
    s3.put_object(Bucket=event["bucket"], Key=event["raw_key"], Body=data)
    return event


def _read(s3, key: str) -> bytes:
    return s3.get_object(Bucket="filegate-local", Key=key)["Body"].read()


def test_sample_generator_reproduces_the_committed_sample() -> None:
    module = runpy.run_path(str(SAMPLE.with_name("make_sample_pdf.py")))
    texts = [f"Statement 2026-11-20, page {i + 1} of 3" for i in range(3)]
    assert module["minimal_pdf"](texts) == SAMPLE.read_bytes()


def test_splits_by_page_map_and_records_page_counts(s3) -> None:
    result = split_pdf.handler(_event(s3, SAMPLE.read_bytes()), Context())
    assert result["status"] == "processed" and result["reason"] is None
    assert result["pages"] == {"total": 3, "part1": 2, "part2": 1}
    outputs = result["outputs"]
    assert [k.rsplit("/", 1)[1] for k in outputs["pdf"]] == ["part1.pdf", "part2.pdf"]
    assert all(k.startswith("processed/pdfs/contract-") for k in outputs["pdf"])
    part1 = PdfReader(io.BytesIO(_read(s3, outputs["pdf"][0])))
    part2 = PdfReader(io.BytesIO(_read(s3, outputs["pdf"][1])))
    assert [p.extract_text() for p in part1.pages] == ["Statement 2026-11-20, page 1 of 3",
                                                       "Statement 2026-11-20, page 2 of 3"]
    assert [p.extract_text() for p in part2.pages] == ["Statement 2026-11-20, page 3 of 3"]
    summary = json.loads(_read(s3, outputs["summary"]))
    assert summary["pages_total"] == 3 and summary["status"] == "processed"
    assert summary["parts"]["part1"]["pages"] == [0, 1] and summary["parts"]["part2"]["page_count"] == 1
    assert _read(s3, "raw/pdfs/2026/11/20/contract.pdf") == SAMPLE.read_bytes()  # raw untouched


def _quarantined(s3, data: bytes, **change) -> str:
    result = split_pdf.handler(_event(s3, data, **change), Context())
    assert result["status"] == "quarantined"
    assert not any(o["Key"].startswith("processed/") for o in
                   s3.list_objects_v2(Bucket="filegate-local").get("Contents", []))
    reason = json.loads(_read(s3, result["outputs"]["summary"]))
    assert result["outputs"]["summary"].startswith("quarantine/pdfs/2026/11/20/")
    assert reason["reason"] == result["reason"]
    return str(result["reason"])


def test_encrypted_pdf_is_quarantined_with_a_clear_reason(s3) -> None:
    writer = PdfWriter(clone_from=str(SAMPLE))
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert "encrypted (password-protected)" in _quarantined(s3, buffer.getvalue())


def test_corrupt_pdf_is_quarantined_with_a_clear_reason(s3) -> None:
    damaged = SAMPLE.read_bytes()[:400]
    assert "damaged" in _quarantined(s3, damaged)
    assert "not a PDF" in _quarantined(s3, b"id,amount\n1,2\n")


def test_page_map_must_fit_the_document(s3) -> None:
    reason = _quarantined(s3, SAMPLE.read_bytes(), page_map={"a": [0], "b": [3, 4]})
    assert reason == "page map part 'b' asks for page(s) [3, 4] but the PDF has 3 page(s), numbered 0 to 2"
    event = example("split_pdf")
    del event["page_map"]
    s3.put_object(Bucket=event["bucket"], Key=event["raw_key"], Body=SAMPLE.read_bytes())
    result = split_pdf.handler(event, Context())
    assert result["status"] == "quarantined" and "no page map" in result["reason"]
