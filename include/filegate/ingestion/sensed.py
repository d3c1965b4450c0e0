"""Sensed S3 arrival: a scheduled run owns a data interval and the raw files whose key date falls in it.

Which date is a file's? The date in its raw key, raw/<feed>/<yyyy>/<mm>/<dd>/<name>: every Filegate ingestion
path writes the arrival date there, it never changes (S3 LastModified does, on copy or restore), and it is what
people ask for when they say "reprocess the 3rd". A run whose data interval is [start, end) owns every key date
the interval touches: with a daily schedule exactly one date; with an hourly one the current date, re-swept each
hour (files already known are skipped, so that is cheap). Backfilling dates D1..D3 therefore means exactly the
files under raw/<feed>/D1 … D3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from filegate.contracts.model import Contract
from filegate.ingestion.arrivals import register_arrivals
from filegate.status.lifecycle import REPROCESSABLE, Status
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys
from filegate.storage.s3 import list_keys

log = logging.getLogger(__name__)


@dataclass
class IntervalReport:
    since: date
    until: date
    to_process: list[int] = field(default_factory=list)
    newly_queued: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    already_done: list[int] = field(default_factory=list)
    elsewhere: list[int] = field(default_factory=list)

    def describe(self) -> str:
        return (f"key dates {self.since} to {self.until - timedelta(days=1)}: {len(self.to_process)} file(s) to "
                f"process ({len(self.newly_queued)} new, {len(self.requeued)} re-queued for reprocessing), "
                f"{len(self.already_done)} already finished, {len(self.elsewhere)} held by another run")


def interval_dates(start: datetime, end: datetime) -> tuple[date, date]:
    """The key dates [since, until) that a data interval [start, end) touches, in UTC."""
    since = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date() if end > start else since
    return since, last + timedelta(days=1)


def register_interval(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor, *,
                      start: datetime, end: datetime, reprocess: bool = False) -> IntervalReport:
    """Registers and queues the interval's raw files; returns exactly the ids this run should process.

    Idempotent: a finished file (processed, quarantined, failed) is left alone unless `reprocess` is set, in
    which case it is queued again from its raw copy; duplicates never are. A file another run is processing
    right now stays with that run (the status store's claim would refuse it anyway)."""
    since, until = interval_dates(start, end)
    report = IntervalReport(since, until)
    report.newly_queued = register_arrivals(store, s3, bucket, contract, actor, sweep=True, since=since,
                                            until=until)
    interval_keys = [obj["Key"] for n in range((until - since).days)
                     for obj in list_keys(s3, bucket, f"{contract.raw_prefix}{since + timedelta(days=n):%Y/%m/%d}/")]
    rows = store.reads.find_by_raw_keys([k for k in interval_keys if keys.arrival_date_from_raw_key(k) is not None])
    for row in sorted(rows.values(), key=lambda r: r["id"]):
        status = Status(row["status"])
        if status == Status.QUEUED:
            report.to_process.append(row["id"])
        elif status in REPROCESSABLE and reprocess:
            report.requeued += store.queue([row["id"]], actor, message=f"reprocess requested by {actor.run_id}")
        elif status in REPROCESSABLE:
            report.already_done.append(row["id"])
        elif status in {Status.PROCESSING, Status.DOWNLOADED}:
            report.elsewhere.append(row["id"])
    report.to_process = sorted(set(report.to_process) | set(report.requeued))
    log.info("%s: %s", contract.name, report.describe())
    return report
