"""The steps of a processing run, over a batch of files, each file with its own status and history.

Airflow tasks (filegate.orchestration) and the CLI call these; they take plain clients, not Airflow hooks.
One bad file never stops the others: it ends `quarantined` or `failed` with a reason, and the step goes on.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget, deliver_records
from filegate.delivery.payload import iter_payload_batches
from filegate.pipeline.publish import process_raw_file
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys
from filegate.storage.s3 import list_keys, sha256_of_object

log = logging.getLogger(__name__)


class RetryableFailure(RuntimeError):
    """Some files hit an infrastructure error; they stay claimed by this run so that a retry picks them up."""


@dataclass
class StepReport:
    done: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retry: dict[int, str] = field(default_factory=dict)


def keys_from_s3_events(messages: Iterable[dict[str, Any]]) -> list[str]:
    """Raw keys from SQS messages carrying S3 event notifications (keys arrive URL-encoded)."""
    import json

    found: list[str] = []
    for message in messages:
        try:
            body = json.loads(message.get("Body") or "{}")
        except json.JSONDecodeError:
            log.warning("ignoring an SQS message that is not JSON: %.200s", message.get("Body"))
            continue
        if isinstance(body, dict) and "Message" in body and "Records" not in body:  # SNS envelope
            try:
                body = json.loads(body["Message"])
            except (TypeError, json.JSONDecodeError):
                continue
        for record in body.get("Records", []) if isinstance(body, dict) else []:
            if str(record.get("eventName", "")).startswith("ObjectCreated"):
                found.append(unquote_plus(record["s3"]["object"]["key"]))
    return found


def register_arrivals(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor, *,
                      event_keys: Iterable[str] = (), sweep: bool = True, since: date | None = None,
                      until: date | None = None) -> list[int]:
    """Registers raw objects not yet known (from events, plus a sweep of the feed's prefix) and queues them.

    The sweep reconciles S3 with the store: SQS messages are consumed before a run exists, so a run that
    failed or a paused DAG must not lose files. `since`/`until` limit the sweep to arrival dates (backfill).
    """
    candidates = {k for k in event_keys if k.startswith(contract.raw_prefix)}
    if sweep:
        candidates.update(obj["Key"] for obj in list_keys(s3, bucket, contract.raw_prefix))
    wanted = []
    for key in sorted(candidates):
        arrived = keys.arrival_date_from_raw_key(key)
        if not fnmatch.fnmatch(posixpath.basename(key), contract.source.pattern):
            continue
        if (since and (arrived is None or arrived < since)) or (until and (arrived is None or arrived >= until)):
            continue
        wanted.append(key)
    known = store.find_by_raw_keys(wanted)
    queued: list[int] = []
    for key in wanted:
        if key in known:
            if known[key]["status"] == Status.DOWNLOADED:
                queued += store.queue([known[key]["id"]], actor)
            continue
        sha256, size = sha256_of_object(s3, bucket, key)
        registration = store.register(
            feed=contract.name, source=contract.source.kind, raw_key=key, name=posixpath.basename(key),
            sha256=sha256, size_bytes=size, actor=actor, arrived_on=keys.arrival_date_from_raw_key(key),
        )
        if registration.status == Status.DOWNLOADED:
            queued += store.queue([registration.file_id], actor)
        log.info("registered %s as file #%s (%s)", key, registration.file_id, registration.status)
    return queued


def process_files(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor, *,
                  file_ids: Iterable[int] | None = None, limit: int = 500, last_try: bool = True) -> StepReport:
    """Claims queued files and runs each through the engine; valid output is published, bad files quarantined."""
    report = StepReport()
    claimed = store.claim(actor, feed=contract.name, file_ids=list(file_ids) if file_ids is not None else None,
                          limit=limit)
    log.info("claimed %d file(s) of feed %s", len(claimed), contract.name)
    for row in claimed:
        file_id = row["id"]
        arrived = row["arrived_on"] or row["created_at"].date()
        try:
            outcome = process_raw_file(s3, bucket, contract, raw_key=row["raw_key"], name=row["name"],
                                       arrived=arrived)
        except Exception as exc:  # one file's infrastructure error must not stop the batch
            reason = f"processing {row['name']} failed: {type(exc).__name__}: {exc}"
            log.exception("file #%s: %s", file_id, reason)
            if last_try:
                store.transition(file_id, Status.FAILED, actor, error=reason)
                report.failed.append(file_id)
            else:
                report.retry[file_id] = reason
            continue
        engine = outcome.engine
        store.record_quality(file_id, rows_total=engine.rows_total, rows_valid=engine.rows_valid,
                             rows_rejected=engine.rows_rejected, inferred_schema=engine.schema,
                             column_stats=engine.column_stats, issues=engine.issues)
        if outcome.status == "quarantined":
            store.transition(file_id, Status.QUARANTINED, actor, error=outcome.reason, outputs=outcome.outputs)
            report.quarantined.append(file_id)
        else:
            store.save_outputs(file_id, outcome.outputs)
            report.done.append(file_id)
    if report.retry:
        raise RetryableFailure(f"{len(report.retry)} file(s) will be retried: " + "; ".join(report.retry.values()))
    return report


def deliver_files(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor,
                  file_ids: Iterable[int], target: ApiTarget | None, *, last_try: bool = True) -> StepReport:
    """Posts each processed file's records to the feed's API, then marks it `processed`."""
    report = StepReport()
    api = contract.destinations.api
    for file_id in file_ids:
        row = store.get_file(file_id)
        if row is None or row["status"] != Status.PROCESSING or row["last_run_id"] != actor.run_id:
            log.info("file #%s is not held by this run (status %s); skipping", file_id, row and row["status"])
            continue
        if api is None or target is None:
            store.transition(file_id, Status.PROCESSED, actor, message="no API destination configured")
            report.done.append(file_id)
            continue
        try:
            with tempfile.TemporaryDirectory(prefix="filegate-deliver-") as tmp:
                local = []
                for n, key in enumerate(row["outputs"].get("parquet", [])):
                    path = Path(tmp) / f"{n}.parquet"
                    s3.download_file(bucket, key, str(path))
                    local.append(path)
                result = deliver_records(
                    iter_payload_batches(local, api.payload, api.batch_size), target, file_id=file_id,
                    sha256=row["sha256"], batch_size=api.batch_size, acknowledged=store.acknowledged_keys(file_id),
                    recorder=store,
                )
        except Exception as exc:
            result = None
            reason = f"delivery of {row['name']} failed: {type(exc).__name__}: {exc}"
            log.exception("file #%s: %s", file_id, reason)
        else:
            reason = f"API delivery to {target.url} incomplete: {result.describe()}"
        if result is not None and result.ok:
            store.transition(file_id, Status.PROCESSED, actor, message=f"API: {result.describe()}")
            report.done.append(file_id)
        elif last_try:
            store.transition(file_id, Status.FAILED, actor, error=reason)
            report.failed.append(file_id)
        else:
            report.retry[file_id] = reason
    if report.retry:
        raise RetryableFailure(f"{len(report.retry)} file(s) will be retried: " + "; ".join(report.retry.values()))
    return report
