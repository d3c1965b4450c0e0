"""Lambda handler: process one raw file from S3 with the feed's contract; outputs go to S3, the outcome is
returned. Event: {"bucket", "raw_key", "feed", "name", "arrived": "YYYY-MM-DD"} — S3 references, never bodies."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from filegate.contracts import get_contract
from filegate.pipeline.publish import process_raw_file
from filegate.storage.s3 import s3_client

log = logging.getLogger(__name__)
REQUIRED = ("bucket", "raw_key", "feed", "name", "arrived")


class BadEvent(ValueError):
    pass


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    missing = [key for key in REQUIRED if not event.get(key)]
    if missing:
        raise BadEvent(f"event lacks {', '.join(missing)}; expected keys: {', '.join(REQUIRED)}")
    contract = get_contract(event["feed"])
    outcome = process_raw_file(s3_client(), event["bucket"], contract, raw_key=event["raw_key"],
                               name=event["name"], arrived=date.fromisoformat(event["arrived"]))
    engine = outcome.engine
    log.info("%s: %s (%s rows, %s rejected)", event["raw_key"], outcome.status, engine.rows_total,
             engine.rows_rejected)
    return {"status": outcome.status, "reason": outcome.reason, "outputs": outcome.outputs,
            "rows": {"total": engine.rows_total, "valid": engine.rows_valid, "rejected": engine.rows_rejected},
            "issues": engine.issues, "columns": engine.column_stats, "schema": engine.schema}
