"""The steps of a processing run, over a batch of files, each file with its own status and history.

Airflow tasks (filegate.orchestration) and the CLI call these; they take plain clients, not Airflow hooks.
One bad file never stops the others: it ends `quarantined` or `failed` with a reason, and the step goes on.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget, SharedLimits, deliver_records
from filegate.delivery.payload import PayloadError, iter_payload_batches
from filegate.delivery.template import PayloadTemplate
from filegate.functions.invoke import Invoker
from filegate.pipeline.heavy import process_routed
from filegate.settings import file_workers
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, StatusStore
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


def reprocess_hint(file_id: int) -> str:
    """What a person can do about a failed file, appended to its error."""
    return (f"the raw copy is kept; once the cause is fixed, re-run it with the reprocess_files DAG "
            f"(file_ids=[{file_id}])")


T = TypeVar("T")


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
            store.transition(file_id, Status.PROCESSED, actor, message=f"API: {result.describe()}")
            return "done", None
        if give_up:
            store.transition(file_id, Status.FAILED, actor, error=f"{reason}; {reprocess_hint(file_id)}")
            return "failed", reason
        return "retry", reason

    return _step_report(rows, for_each_file(rows, one, workers))
