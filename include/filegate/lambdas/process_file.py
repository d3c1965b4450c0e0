"""Lambda handler filegate-process-file: one raw file S3 → engine → processed/ + quarantine/, in one invocation.

Event: functions/schemas/process_file.schema.json (S3 references and the feed contract, never file bodies).
The same process_raw_file the Airflow workers run, so outputs are byte-for-byte the worker's."""

from __future__ import annotations

import logging
from typing import Any

from filegate.lambdas.runtime import (
    arrival,
    checked_event,
    configure_logging,
    contract_from_event,
    ensure_space,
    object_size,
    response,
    tmp_root,
)
from filegate.pipeline.publish import process_raw_file
from filegate.storage.s3 import s3_client

log = logging.getLogger(__name__)
configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = checked_event("process_file", event)
    contract = contract_from_event(event)
    s3 = s3_client()
    size = object_size(s3, event["bucket"], event["raw_key"])
    ensure_space(size, what=f"converting {event['raw_key']}")
    log.info("processing s3://%s/%s (%d bytes) for feed %s", event["bucket"], event["raw_key"], size,
             contract.name)
    outcome = process_raw_file(s3, event["bucket"], contract, raw_key=event["raw_key"], name=event["name"],
                               arrived=arrival(event), work_root=tmp_root(), registered_sha256=event.get("sha256"))
    engine = outcome.engine
    log.info("%s: %s (%s rows, %s rejected)", event["raw_key"], outcome.status, engine.rows_total,
             engine.rows_rejected)
    return response(outcome.status, outcome.reason, outcome.outputs,
                    rows={"total": engine.rows_total, "valid": engine.rows_valid, "rejected": engine.rows_rejected})
