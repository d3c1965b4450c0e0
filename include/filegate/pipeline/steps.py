"""The steps of a processing run, over a batch of files, each file with its own status and history.

Airflow tasks (filegate.orchestration) and the CLI call these; they take plain clients, not Airflow hooks.
One bad file never stops the others: it ends `quarantined` or `failed` with a reason, and the step goes on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget, SharedLimits, deliver_records
from filegate.delivery.payload import PayloadError, iter_payload_batches
from filegate.delivery.template import PayloadTemplate
from filegate.functions.invoke import Invoker
from filegate.schema_drift import compact_profile
from filegate.settings import file_workers
from filegate.status.lease import keep_leases, lease_seconds
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, ClaimLost, StatusStore
from filegate.storage.s3 import ObjectChanged

log = logging.getLogger(__name__)
DEFAULT_PARALLEL_MAX_BYTES = 32 << 20


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
    lost: list[int] = field(default_factory=list)  # taken over by another run after this one's claim expired
    drift_warned: list[int] = field(default_factory=list)  # accepted with a schema change under `warn`: alert


def reprocess_hint(file_id: int) -> str:
    """What a person can do about a failed file, appended to its error."""
    return (f"the raw copy is kept; once the cause is fixed, re-run it with the reprocess_files DAG "
            f"(file_ids=[{file_id}])")


T = TypeVar("T")


Outcome = tuple[str, str | None]  # ("done" | "quarantined" | "failed" | "retry" | "lost", reason)


def _step_report(rows: list[dict[str, Any]], outcomes: dict[int, Outcome],
                 drift_warned: Iterable[int] = ()) -> StepReport:
    """The step's report in the rows' order; files to retry make the step raise, after the others are done."""
    report = StepReport(drift_warned=sorted(drift_warned))
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
    # Here, not at the top: the engine's imports (pyarrow.compute, and pandas through pyarrow) take about 2 s of
    # a task's start, which the delivery step, importing this module too, does not need.
    from filegate.pipeline.heavy import process_routed

    claimed = store.claim(actor, feed=contract.name, file_ids=list(file_ids) if file_ids is not None else None,
                          limit=limit)
    log.info("claimed %d file(s) of feed %s", len(claimed), contract.name)
    drift_warned: list[int] = []

    def one(row: dict[str, Any]) -> Outcome:
        file_id = row["id"]
        arrived = row["arrived_on"] or row["created_at"].date()
        try:
            outcome = process_routed(s3, bucket, contract, row, arrived=arrived, invoker=invoker,
                                     schema_baseline=store.schemas.current(contract.name))
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
        accepted = outcome.status == "processed"
        if engine.file_schema:  # a tabular file read past its header (not a PDF, not an unreadable file)
            store.schemas.record(file_id, contract.name, engine.file_schema, accepted=accepted,
                                 profile=compact_profile(engine.column_stats), drift=engine.schema_drift)
        if accepted and engine.schema_drift and engine.schema_drift["verdict"] == "warn":
            drift_warned.append(file_id)
        if outcome.status == "quarantined":
            store.transition(file_id, Status.QUARANTINED, actor, error=outcome.reason, outputs=outcome.outputs)
            return "quarantined", outcome.reason
        store.save_outputs(file_id, outcome.outputs)
        return "done", None

    with keep_leases(store, actor, [row["id"] for row in claimed]):
        outcomes = for_each_file(claimed, _unless_lost(one), workers)
    # The deliver task starts later (a busy scheduler may take minutes): its files keep a longer lease till then.
    handed_over = [file_id for file_id, (kind, _) in outcomes.items() if kind == "done"]
    if handed_over:
        store.renew_leases(handed_over, actor, lease_s=2 * lease_seconds())
    return _step_report(claimed, outcomes, drift_warned)


def _unless_lost(work: Callable[[dict[str, Any]], Outcome]) -> Callable[[dict[str, Any]], Outcome]:
    """A file this run no longer holds (its claim expired and another run took it) is left to that run."""
    def guarded(row: dict[str, Any]) -> Outcome:
        try:
            return work(row)
        except ClaimLost as exc:
            log.warning("file #%s: %s; leaving it to that run", row["id"], exc)
            return "lost", str(exc)
    return guarded


def _content_changed(exc: Exception) -> bool:
    """The raw object is not the registered content, read here or by the Lambda function."""
    return isinstance(exc, ObjectChanged) or getattr(exc, "error_type", None) == ObjectChanged.__name__


def deliver_files(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor,
                  file_ids: Iterable[int], target: ApiTarget | None, *, last_try: bool = True,
                  workers: int | None = None, next_try_in_s: float = 0.0) -> StepReport:
    """Posts each processed file's records to the feed's API, then marks it `processed`.

    A file whose batches were all acknowledged becomes `processed`. A file the API could not take now (5xx,
    429, timeouts, refused connections) stays `processing`, held by this run, with a `delivery waiting` entry
    in its history, and the step raises RetryableFailure so that the task's next try (in about `next_try_in_s`,
    or after the API's Retry-After) posts what is missing: acknowledged batches are never posted again. The
    file becomes `failed`, naming the failed batches, when the API refused the batches outright (4xx), when it
    stayed unavailable longer than the destination's `retry_for_minutes`, or on the task's last try. Several
    files are delivered at once (as in process_files); together they keep the target's concurrency and rate.
    """
    api = contract.destinations.api
    template = PayloadTemplate.compile(api.payload) if api is not None else None
    shared = SharedLimits.for_target(target) if target is not None else None
    rows = []
    for file_id in file_ids:
        row = store.reads.get_file(file_id)
        if row is None or row["status"] != Status.PROCESSING or row["last_run_id"] != actor.run_id:
            log.info("file #%s is not held by this run (status %s); skipping", file_id, row and row["status"])
            continue
        rows.append(row)

    def one(row: dict[str, Any]) -> Outcome:
        file_id = row["id"]
        if api is None or target is None or template is None:
            store.transition(file_id, Status.PROCESSED, actor, message="no API destination configured")
            return "done", None
        started = datetime.now(UTC)
        not_before = row.get("delivery_retry_at")
        if not_before is not None and not_before > started:
            wait_s = (not_before - started).total_seconds()
            if wait_s > target.max_wait_in_task_s:  # the API's Retry-After is still running: do not post yet
                reason = f"the API asked not to be called before {_clock(not_before)} (Retry-After)"
                if last_try:
                    store.transition(file_id, Status.FAILED, actor,
                                     error=f"delivery of {row['name']} gave up: {reason}, after the task's last "
                                           f"try; {reprocess_hint(file_id)}")
                    return "failed", reason
                store.note_delivery_waiting(file_id, actor, since=row.get("delivery_waiting_since") or started,
                                            retry_at=not_before,
                                            message=f"delivery waiting: {reason}; try {actor.try_number} posted "
                                                    "nothing")
                return "retry", reason
            time.sleep(wait_s)
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
                    # Idempotency keys follow the job (content + processing parameters), not the bytes alone:
                    # the same bytes uploaded with other parameters are new records to post.
                    sha256=row["job_key"] or row["sha256"], batch_size=api.batch_size,
                    acknowledged=store.reads.acknowledged_keys(file_id), recorder=store, shared=shared,
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
            store.transition(file_id, Status.PROCESSED, actor, message=f"API: {result.describe()}"
                             + _waited(row.get("delivery_waiting_since")))
            return "done", None
        now = datetime.now(UTC)
        since = row.get("delivery_waiting_since") or started
        deadline = since + timedelta(minutes=api.retry_for_minutes)
        if not give_up and now >= deadline:
            give_up = True
            reason = (f"the API stayed unavailable from {_clock(since)} to {_clock(now)} "
                      f"({(now - since).total_seconds() / 60:.1f} min), longer than the destination's "
                      f"retry_for_minutes ({api.retry_for_minutes:g}); {reason}")
        if give_up:
            store.transition(file_id, Status.FAILED, actor, error=f"{reason}; {reprocess_hint(file_id)}")
            return "failed", reason
        asked = result.retry_after_s if result is not None and result.retry_after_s else 0.0
        retry_at = now + timedelta(seconds=max(next_try_in_s, asked))
        first = _first_error(result) if result is not None else reason
        store.note_delivery_waiting(
            file_id, actor, since=since, retry_at=now + timedelta(seconds=asked) if asked else now,
            lease_s=max(next_try_in_s, asked) + lease_seconds(),
            message=(f"delivery waiting: API unavailable since {_clock(since)} ({first}); try "
                     f"{actor.try_number} failed, retry {(actor.try_number or 0) + 1} at about {_clock(retry_at)}"
                     + (f" (Retry-After {asked:.0f} s)" if asked else "")
                     + f"; gives up at {_clock(deadline)} (retry_for_minutes {api.retry_for_minutes:g})"))
        return "retry", reason

    with keep_leases(store, actor, [row["id"] for row in rows]):
        outcomes = for_each_file(rows, _unless_lost(one), workers)
    return _step_report(rows, outcomes)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _waited(since: datetime | None) -> str:
    if since is None:
        return ""
    return f"; after the API was unavailable from {_clock(since)} ({(datetime.now(UTC) - since).total_seconds():.0f} s)"


def _first_error(result: Any) -> str:
    """The first failed batch's error, short: enough to tell an outage (refused connections) from a 503."""
    if result.failed:
        batch = min(result.failed)
        return f"batch #{batch}: {result.failed[batch][:160]}"
    return "no batch acknowledged"
