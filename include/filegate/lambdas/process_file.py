"""Lambda handler filegate-process-file: one raw file S3 → engine → processed/ + quarantine/, in one invocation.

Event: functions/schemas/process_file.schema.json (S3 references and the feed contract, never file bodies).
The same process_raw_file the Airflow workers run, so outputs are byte-for-byte the worker's. A feed with
`destinations.postgres` is loaded by the worker (the function has no database): with `staged_publish_prefix` in
the event, a processed file's Parquet and summary wait there (filegate.pipeline.staged_publish)."""

from __future__ import annotations

import logging
from typing import Any

from filegate.lambdas import runtime
from filegate.pipeline.publish import process_raw_file
from filegate.storage.s3 import s3_client

log = logging.getLogger(__name__)
runtime.configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = runtime.checked_event("process_file", event)
    contract = runtime.contract_from_event(event)
    s3 = s3_client()
    size = runtime.object_size(s3, event["bucket"], event["raw_key"])
    runtime.ensure_space(size, what=f"converting {event['raw_key']}")
    log.info("processing s3://%s/%s (%d bytes) for feed %s", event["bucket"], event["raw_key"], size,
             contract.name)
    outcome = process_raw_file(s3, event["bucket"], contract, raw_key=event["raw_key"], name=event["name"],
                               arrived=runtime.arrival(event), work_root=runtime.tmp_root(),
                               registered_sha256=event.get("sha256"),
                               schema_baseline=event.get("schema_baseline"),
                               staged_prefix=event.get("staged_publish_prefix"))
    engine = outcome.engine
    log.info("%s: %s (%s rows, %s rejected)", event["raw_key"], outcome.status, engine.rows_total,
             engine.rows_rejected)
    rows = {"total": engine.rows_total, "valid": engine.rows_valid, "rejected": engine.rows_rejected}
    return runtime.response(outcome.status, outcome.reason, outcome.outputs, rows=rows)
