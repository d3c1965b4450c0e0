"""The steps of a processing run, over a batch of files, each file with its own status and history.

Airflow tasks (filegate.orchestration) and the CLI call these; they take plain clients, not Airflow hooks.
One bad file never stops the others: it ends `quarantined` or `failed` with a reason, and the step goes on.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget, SharedLimits, deliver_records
from filegate.delivery.payload import PayloadError, iter_payload_batches
from filegate.delivery.template import PayloadTemplate
from filegate.functions.client import Invoker
from filegate.pipeline.heavy import process_routed
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys
from filegate.storage import metadata as s3_metadata
from filegate.storage.s3 import ObjectChanged, hash_object, list_keys

log = logging.getLogger(__name__)
DEFAULT_FILE_WORKERS = 4
DEFAULT_PARALLEL_MAX_BYTES = 32 << 20
MAX_SWEEP_DAYS = 366  # longer ranges list the whole feed prefix once instead of one listing per day


class RetryableFailure(RuntimeError):
    """Some files hit an infrastructure error; they stay claimed by this run so that a retry picks them up.

    `report` still tells what the step finished (files quarantined or failed before the error), for alerts.
    """

    def __init__(self, message: str, report: StepReport | None = None) -> None:
        super().__init__(message)
        self.report = report


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
    failed or a paused DAG must not lose files. `since`/`until` limit the sweep to arrival dates [since, until)
    (sensed runs, backfill); with both given only those days' prefixes are listed, not the feed's whole history.
    """
    candidates = {k for k in event_keys if k.startswith(contract.raw_prefix)}
    if sweep:
        for prefix in _sweep_prefixes(contract, since, until):
            candidates.update(obj["Key"] for obj in list_keys(s3, bucket, prefix))
    wanted = []
    for key in sorted(candidates):
        arrived = keys.arrival_date_from_raw_key(key)
        if not fnmatch.fnmatch(posixpath.basename(key), contract.source.pattern):
            continue
        if (since and (arrived is None or arrived < since)) or (until and (arrived is None or arrived >= until)):
            continue
        wanted.append(key)
    known = store.find_by_raw_keys(wanted)
    to_queue = [known[key]["id"] for key in wanted if key in known and known[key]["status"] == Status.DOWNLOADED]
    fresh = [key for key in wanted if key not in known]

    def read(key: str) -> tuple[str, int, str | None, dict[str, Any] | None]:
        found = hash_object(s3, bucket, key)
        source_path, params = _arrival_details(found.metadata, where=f"s3://{bucket}/{key}")
        return found.sha256, found.size, source_path, params

    # Reading (hashing) the objects runs several at a time; registering stays in key order, so that of two
    # files with the same content the first by name is the original, whatever the timing.
    with ThreadPoolExecutor(max_workers=file_workers(), thread_name_prefix="filegate-register") as pool:
        for key, (sha256, size, source_path, params) in zip(fresh, pool.map(read, fresh), strict=True):
            registration = store.register(
                feed=contract.name, source=contract.source.kind, raw_key=key, name=posixpath.basename(key),
                sha256=sha256, size_bytes=size, actor=actor, arrived_on=keys.arrival_date_from_raw_key(key),
                source_path=source_path, params=params,
            )
            if registration.status == Status.DOWNLOADED:
                to_queue.append(registration.file_id)
            log.info("registered %s as file #%s (%s)", key, registration.file_id, registration.status)
    return store.queue(to_queue, actor) if to_queue else []


def _sweep_prefixes(contract: Contract, since: date | None, until: date | None) -> list[str]:
    if since is None or until is None or not 0 < (until - since).days <= MAX_SWEEP_DAYS:
        return [contract.raw_prefix]
    return [f"{contract.raw_prefix}{since + timedelta(days=n):%Y/%m/%d}/" for n in range((until - since).days)]


def _arrival_details(metadata: dict[str, str], *, where: str) -> tuple[str | None, dict[str, Any]]:
    """What the raw object's metadata says of its arrival: the FTP path an ingest_ftp copy came from, and the
    processing parameters given with an upload (kept on the file row, shown on its page)."""
    try:
        params = s3_metadata.params_of(metadata, where=where)
    except ValueError as exc:  # processing a file that needs its parameters says so; registering goes on
        log.warning("%s", exc)
        params = {}
    identity = s3_metadata.source_identity(metadata)
    if identity is None:
        return None, params
    return identity.split("|", 1)[0], {**params, "source_identity": identity}


def reprocess_hint(file_id: int) -> str:
    """What a person can do about a failed file, appended to its error."""
    return (f"the raw copy is kept; once the cause is fixed, re-run it with the reprocess_files DAG "
            f"(file_ids=[{file_id}])")


T = TypeVar("T")


def file_workers() -> int:
    """How many files a step handles at once (FILEGATE_FILE_WORKERS, default 4)."""
    return max(int(os.environ.get("FILEGATE_FILE_WORKERS") or DEFAULT_FILE_WORKERS), 1)


Outcome = tuple[str, str | None]  # ("done" | "quarantined" | "failed" | "retry", reason)


def _step_report(rows: list[dict[str, Any]], outcomes: dict[int, Outcome]) -> StepReport:
    """The step's report in the rows' order; files to retry make the step raise, after the others are done."""
    report = StepReport()
    for row in rows:
        kind, reason = outcomes[row["id"]]
        if kind == "retry":
            report.retry[row["id"]] = reason or ""
        else:
            getattr(report, kind).append(row["id"])
    if report.retry:
        raise RetryableFailure(f"{len(report.retry)} file(s) will be retried: " + "; ".join(report.retry.values()),
                               report)
    return report


def for_each_file(rows: list[dict[str, Any]], work: Callable[[dict[str, Any]], T],
                  workers: int | None = None) -> dict[int, T]:
    """`work` for every file row, by file id: small files `workers` at a time (FILEGATE_FILE_WORKERS, default
    4), then files over FILEGATE_PARALLEL_MAX_BYTES (default 32 MB) one by one. `work` handles its own errors."""
    workers = workers or file_workers()
    big = int(os.environ.get("FILEGATE_PARALLEL_MAX_BYTES") or DEFAULT_PARALLEL_MAX_BYTES)
    small = [row for row in rows if (row.get("size_bytes") or 0) <= big]
    large = [row for row in rows if (row.get("size_bytes") or 0) > big]
    results: dict[int, T] = {}
    one_by_one = large
    if workers > 1 and len(small) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(small)), thread_name_prefix="filegate-file") as pool:
            results.update((row["id"], result) for row, result in zip(small, pool.map(work, small), strict=True))
    else:
        one_by_one = small + large
    for row in one_by_one:
        results[row["id"]] = work(row)
    return results


def process_files(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor, *,
                  file_ids: Iterable[int] | None = None, limit: int = 500, last_try: bool = True,
                  invoker: Invoker | None = None, workers: int | None = None) -> StepReport:
    """Claims queued files and runs each through the engine; valid output is published, bad files quarantined.

    Heavy files (the contract's `heavy` settings) run on Lambda through `invoker` (filegate.pipeline.heavy).
    Small files run `workers` at a time (a burst is mostly waiting on S3 and Postgres); files over
    FILEGATE_PARALLEL_MAX_BYTES run one at a time after them, so a worker never holds several big files."""
    claimed = store.claim(actor, feed=contract.name, file_ids=list(file_ids) if file_ids is not None else None,
                          limit=limit)
    log.info("claimed %d file(s) of feed %s", len(claimed), contract.name)

    def one(row: dict[str, Any]) -> Outcome:
        file_id = row["id"]
        arrived = row["arrived_on"] or row["created_at"].date()
        try:
            outcome = process_routed(s3, bucket, contract, row, arrived=arrived, invoker=invoker)
        except Exception as exc:  # one file's infrastructure error must not stop the batch
            reason = f"processing {row['name']} failed: {type(exc).__name__}: {exc}"
            log.exception("file #%s: %s", file_id, reason)
            if _content_changed(exc):  # a retry would read the same other content: fail now, say why
                store.transition(file_id, Status.FAILED, actor, error=f"processing {row['name']} failed: {exc}")
                return "failed", reason
            if not last_try:
                return "retry", reason
            store.transition(file_id, Status.FAILED, actor, error=f"{reason}; {reprocess_hint(file_id)}")
            return "failed", reason
        engine = outcome.engine
        store.record_quality(file_id, rows_total=engine.rows_total, rows_valid=engine.rows_valid,
                             rows_rejected=engine.rows_rejected,
                             inferred_schema=engine.inferred_schema or engine.schema,
                             column_stats=engine.column_stats, issues=engine.issues)
        if outcome.status == "quarantined":
            store.transition(file_id, Status.QUARANTINED, actor, error=outcome.reason, outputs=outcome.outputs)
            return "quarantined", outcome.reason
        store.save_outputs(file_id, outcome.outputs)
        return "done", None

    return _step_report(claimed, for_each_file(claimed, one, workers))


def _content_changed(exc: Exception) -> bool:
    """The raw object is not the registered content, read here or by the Lambda function."""
    return isinstance(exc, ObjectChanged) or getattr(exc, "error_type", None) == ObjectChanged.__name__


def deliver_files(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor,
                  file_ids: Iterable[int], target: ApiTarget | None, *, last_try: bool = True,
                  workers: int | None = None) -> StepReport:
    """Posts each processed file's records to the feed's API, then marks it `processed`.

    A file whose batches were all acknowledged becomes `processed`. Otherwise the task is retried (acknowledged
    batches are skipped, so a retry posts only what is missing) unless this is the last try or the API refused
    the batches outright (4xx): then the file becomes `failed`, naming the failed batches. Several files are
    delivered at once (as in process_files); together they keep the target's concurrency and rate limit.
    """
    api = contract.destinations.api
    template = PayloadTemplate.compile(api.payload) if api is not None else None
    shared = SharedLimits.for_target(target) if target is not None else None
    rows = []
    for file_id in file_ids:
        row = store.get_file(file_id)
        if row is None or row["status"] != Status.PROCESSING or row["last_run_id"] != actor.run_id:
            log.info("file #%s is not held by this run (status %s); skipping", file_id, row and row["status"])
            continue
        rows.append(row)

    def one(row: dict[str, Any]) -> Outcome:
        file_id = row["id"]
        if api is None or target is None or template is None:
            store.transition(file_id, Status.PROCESSED, actor, message="no API destination configured")
            return "done", None
        result = None
        give_up = last_try
        try:
            with tempfile.TemporaryDirectory(prefix="filegate-deliver-") as tmp:
                local = []
                for n, key in enumerate(row["outputs"].get("parquet", [])):
                    path = Path(tmp) / f"{n}.parquet"
                    s3.download_file(bucket, key, str(path))
                    local.append(path)
                meta = {"feed": contract.name, "file_id": file_id, "file_name": row["name"], "sha256": row["sha256"]}
                result = deliver_records(
                    iter_payload_batches(local, template, api.batch_size, meta), target, file_id=file_id,
                    sha256=row["sha256"], batch_size=api.batch_size, acknowledged=store.acknowledged_keys(file_id),
                    recorder=store, shared=shared,
                )
        except PayloadError as exc:  # the contract and the data disagree: retrying cannot help
            reason = f"cannot build the API payload for {row['name']}: {exc}"
            give_up = True
        except Exception as exc:
            reason = f"delivery of {row['name']} failed: {type(exc).__name__}: {exc}"
            log.exception("file #%s: %s", file_id, reason)
        else:
            reason = (f"API delivery to {target.url} incomplete: {result.describe()}. Acknowledged batches are "
                      "kept and never posted again; a re-run posts only the missing ones")
            give_up = give_up or not result.worth_retrying
        if result is not None and result.ok:
            store.transition(file_id, Status.PROCESSED, actor, message=f"API: {result.describe()}")
            return "done", None
        if give_up:
            store.transition(file_id, Status.FAILED, actor, error=f"{reason}; {reprocess_hint(file_id)}")
            return "failed", reason
        return "retry", reason

    return _step_report(rows, for_each_file(rows, one, workers))
