"""Lambda handler filegate-split-pdf: one PDF becomes several by the page map given with its upload.

Event: functions/schemas/split_pdf.schema.json. Parts go to processed/<feed>/<stem>/<part>.pdf and the summary
(page counts per part) to processed/<feed>/_summaries/<stem>.json. A corrupt or encrypted PDF, or a page map
that does not fit the document, is quarantined with the reason in quarantine/…/<stem>.reason.json."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from filegate.lambdas import runtime
from filegate.pipeline.pdf_split import PdfRejected, parse_page_map, split_pdf
from filegate.storage import keys
from filegate.storage.s3 import download_with_sha256, put_json, s3_client, upload_file

log = logging.getLogger(__name__)
runtime.configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = runtime.checked_event("split_pdf", event)
    bucket, raw_key, feed, name = event["bucket"], event["raw_key"], event["feed"], event["name"]
    arrived = runtime.arrival(event)
    s3 = s3_client()
    runtime.ensure_space(runtime.object_size(s3, bucket, raw_key), what=f"splitting {raw_key}", factor=3.0)
    with tempfile.TemporaryDirectory(prefix="filegate-pdf-", dir=runtime.tmp_root()) as tmp:
        work = Path(tmp)
        source = work / "source.pdf"
        sha256, size = download_with_sha256(s3, bucket, raw_key, source)
        stem = keys.file_stem(name, sha256)
        document: dict[str, Any] = {"feed": feed, "file": name, "sha256": sha256, "raw_key": raw_key,
                                    "bytes": size, "page_map": event.get("page_map")}
        try:
            split = split_pdf(source, parse_page_map(event.get("page_map")), work)
        except PdfRejected as exc:
            reason_key = keys.quarantine_reason_key(feed, arrived, stem)
            outputs = {"raw": raw_key, "summary": reason_key}
            put_json(s3, bucket, reason_key, {**document, "status": "quarantined", "reason": str(exc),
                                              "outputs": outputs})
            log.warning("%s quarantined: %s", raw_key, exc)
            return runtime.response("quarantined", str(exc), outputs, pages={})
        outputs = {"raw": raw_key, "pdf": [upload_file(s3, bucket, keys.pdf_part_key(feed, stem, p.name), p.path,
                                                        "application/pdf") for p in split.parts],
                   "summary": keys.summary_key(feed, stem),
                   "pages": {p.name: p.page_count for p in split.parts}}
        put_json(s3, bucket, outputs["summary"], {**document, "status": "processed", "reason": None,
                                                   **split.summary(), "outputs": outputs})
    log.info("%s: %d page(s) split into %d part(s)", raw_key, split.pages_total, len(split.parts))
    return runtime.response("processed", None, outputs, pages={"total": split.pages_total, **outputs["pages"]})
