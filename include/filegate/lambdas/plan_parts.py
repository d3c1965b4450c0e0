"""Lambda handler filegate-plan-parts: byte ranges of a large delimited file, cut at record boundaries.

Event: functions/schemas/plan_parts.schema.json. Streams the object once (no /tmp): sha256 and quote parity,
so a newline inside a quoted field is never taken for a record boundary. One part, with the reason, when the
file or its contract cannot be split safely."""

from __future__ import annotations

import logging
from typing import Any

from filegate.lambdas.runtime import CHUNK, checked_event, configure_logging, contract_from_event
from filegate.pipeline.parts import plan_ranges
from filegate.storage.s3 import s3_client

log = logging.getLogger(__name__)
configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = checked_event("plan_parts", event)
    contract = contract_from_event(event)
    body = s3_client().get_object(Bucket=event["bucket"], Key=event["raw_key"])["Body"]
    plan = plan_ranges(iter(lambda: body.read(CHUNK), b""), contract, part_bytes=event["part_bytes"],
                       max_parts=event.get("max_parts", 200))
    log.info("%s: %d bytes, %s", event["raw_key"], plan.size, plan.reason)
    return plan.as_dict()
