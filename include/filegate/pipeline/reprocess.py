"""Reprocessing: choose finished files by id, feed, arrival dates and status, and queue them to run again from
their raw copies. The processing and delivery steps are the normal ones, so a re-run is idempotent: outputs have
deterministic keys and API batches already acknowledged are skipped.

Used by the `reprocess_files` DAG (filegate.orchestration.reprocess_files); no Airflow here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from filegate.status.lifecycle import REPROCESSABLE, Status, TransitionError
from filegate.status.store import Actor, StatusStore

log = logging.getLogger(__name__)
DEFAULT_STATUSES = (Status.FAILED, Status.QUARANTINED)
# A `processing` file is taken only when its claim has expired (the run holding it is gone): it is released.
SELECTABLE = REPROCESSABLE | {Status.PROCESSING}
MAX_FILES = 5_000


class ReprocessParamsError(ValueError):
    """The request cannot run as given; the message says what to change."""


@dataclass(frozen=True)
class ReprocessRequest:
    file_ids: tuple[int, ...] = ()
    feed: str | None = None
    arrived_from: date | None = None
    arrived_to: date | None = None
    statuses: tuple[Status, ...] = DEFAULT_STATUSES
    dry_run: bool = False

    def describe(self) -> str:
        parts = []
        if self.file_ids:
            parts.append(f"file_ids={list(self.file_ids)}")
        if self.feed:
            parts.append(f"feed={self.feed}")
        if self.arrived_from or self.arrived_to:
            parts.append(f"arrived {self.arrived_from or '…'}..{self.arrived_to or '…'}")
        parts.append(f"statuses={[str(s) for s in self.statuses]}")
        return ", ".join(parts)


def _date(name: str, value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ReprocessParamsError(f"{name}: {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-20") from None


def _ids(value: Any) -> tuple[int, ...]:
    if value in (None, "", []):
        return ()
    items: Iterable[Any] = value.replace(",", " ").split() if isinstance(value, str) else value
    ids = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError):
            raise ReprocessParamsError(f"file_ids: {item!r} is not a file id (a positive whole number)") from None
        if number < 1 or isinstance(item, bool):
            raise ReprocessParamsError(f"file_ids: {item!r} is not a file id (a positive whole number)")
        ids.append(number)
    return tuple(dict.fromkeys(ids))


def _statuses(value: Any) -> tuple[Status, ...]:
    if value in (None, "", []):
        return DEFAULT_STATUSES
    names = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    allowed = ", ".join(sorted(SELECTABLE))
    chosen = []
    for name in names:
        try:
            status = Status(str(name).strip().lower())
        except ValueError:
            raise ReprocessParamsError(f"statuses: {name!r} is not a status; choose from {allowed}") from None
        if status not in SELECTABLE:
            why = {
                Status.DUPLICATE: "a duplicate repeats another file's content and is never loaded twice; "
                                  "reprocess the original instead",
            }.get(status, "it has not finished yet: the process_<feed> DAG picks it up")
            raise ReprocessParamsError(f"statuses: {status} files cannot be reprocessed ({why}); "
                                       f"choose from {allowed}")
        chosen.append(status)
    return tuple(dict.fromkeys(chosen))


def parse_request(params: Mapping[str, Any], known_feeds: Iterable[str]) -> ReprocessRequest:
    """Checks the DAG's params; raises ReprocessParamsError with a message that says what to change."""
    feeds = sorted(known_feeds)
    feed = (params.get("feed") or "").strip() or None
    if feed is not None and feed not in feeds:
        raise ReprocessParamsError(f"feed: unknown feed {feed!r}; known feeds: {', '.join(feeds) or 'none'}")
    request = ReprocessRequest(
        file_ids=_ids(params.get("file_ids")), feed=feed,
        arrived_from=_date("arrived_from", params.get("arrived_from")),
        arrived_to=_date("arrived_to", params.get("arrived_to")),
        statuses=_statuses(params.get("statuses")), dry_run=bool(params.get("dry_run", False)),
    )
    if request.arrived_from and request.arrived_to and request.arrived_from > request.arrived_to:
        raise ReprocessParamsError(f"arrived_from {request.arrived_from} is after arrived_to {request.arrived_to}")
    if not (request.file_ids or request.feed or request.arrived_from or request.arrived_to):
        raise ReprocessParamsError("choose what to reprocess: give file_ids, a feed, or an arrival date range "
                                   "(arrived_from / arrived_to); reprocessing every feed at once is refused")
    return request


@dataclass
class Plan:
    request: ReprocessRequest
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def file_ids(self) -> list[int]:
        return [f["id"] for f in self.files]

    def by_feed(self) -> dict[str, list[int]]:
        grouped: dict[str, list[int]] = {}
        for row in self.files:
            grouped.setdefault(row["feed"], []).append(row["id"])
        return grouped

    def describe(self) -> str:
        lines = [f"{'would reprocess' if self.request.dry_run else 'reprocessing'} {len(self.files)} file(s) "
                 f"({self.request.describe()}):"]
        for row in self.files:
            error = (row.get("error") or "").replace("\n", " ")
            lines.append(f"  #{row['id']:<6} {row['feed']:<16} {row['status']:<11} {row['arrived_on'] or '-'}  "
                         f"{row['name']}" + (f"  ({error[:120]})" if error else ""))
        return "\n".join(lines)

    def as_dicts(self) -> list[dict[str, Any]]:
        keys = ("id", "feed", "name", "status", "raw_key", "arrived_on", "error")
        return [{k: (str(row[k]) if k == "arrived_on" and row[k] else row[k]) for k in keys} for row in self.files]


def plan(store: StatusStore, request: ReprocessRequest, known_feeds: Iterable[str]) -> Plan:
    """The files the request selects; raises ReprocessParamsError when it selects nothing or names bad files."""
    rows = store.reads.select_files(file_ids=request.file_ids or None, feed=request.feed,
                              arrived_from=request.arrived_from, arrived_to=request.arrived_to,
                              limit=MAX_FILES + 1)
    if request.file_ids:
        found = {r["id"] for r in rows}
        missing = [i for i in request.file_ids if i not in found]
        if missing:
            raise ReprocessParamsError(f"file_ids: no file #{', #'.join(map(str, missing))} matches "
                                       f"({request.describe()}); `filegate status` lists files and ids")
        wrong = [r for r in rows if r["status"] not in request.statuses]
        if wrong:
            listed = "; ".join(f"#{r['id']} is {r['status']}" for r in wrong[:10])
            raise ReprocessParamsError(f"file_ids: {listed}, not one of statuses "
                                       f"{[str(s) for s in request.statuses]}; add the status to `statuses` if "
                                       "you mean it (processed, failed, quarantined can be reprocessed, and "
                                       "processing files whose run is gone)")
        held = [r for r in rows if r["status"] == Status.PROCESSING and _claim_live(r)]
        if held:
            listed = "; ".join(f"#{r['id']} is held by run {r['last_run_id']} until {_when(r['lease_expires_at'])}"
                               for r in held[:10])
            raise ReprocessParamsError(f"file_ids: {listed}: its run still renews the claim (it is alive, or died "
                                       "less than FILEGATE_CLAIM_LEASE_S ago); try again after that time")
    # A failed pickup (FTP) never reached raw/: there is nothing to re-run; its ingest DAG retries the pickup.
    no_raw = [r for r in rows if r["sha256"] is None]
    if request.file_ids and no_raw:
        raise ReprocessParamsError(f"file_ids: #{', #'.join(str(r['id']) for r in no_raw)} never reached raw/ "
                                   "(a failed pickup), so there is no raw copy to re-run; its ingest DAG retries it")
    selected = [r for r in rows if r["status"] in request.statuses and r["sha256"] is not None
                and not (r["status"] == Status.PROCESSING and _claim_live(r))]
    if not selected:
        raise ReprocessParamsError(f"nothing to reprocess: no file matches {request.describe()}")
    if len(selected) > MAX_FILES:
        raise ReprocessParamsError(f"more than {MAX_FILES} files match {request.describe()}; narrow the selection")
    orphans = sorted({r["feed"] for r in selected} - set(known_feeds))
    if orphans:
        raise ReprocessParamsError(f"feed(s) {', '.join(orphans)} of the selected files have no contract in "
                                   "include/feeds/ any more; restore the contract or narrow the selection")
    return Plan(request, selected)


def _claim_live(row: Mapping[str, Any]) -> bool:
    lease = row.get("lease_expires_at")
    return lease is None or lease >= datetime.now(UTC)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "its run ends"


def requeue(store: StatusStore, selection: Sequence[Mapping[str, Any]], actor: Actor) -> list[int]:
    """Moves each selected file back to `queued`; a file whose status changed since planning is left alone.
    A `processing` file whose claim expired is released (StatusStore.release_expired says whose claim it was)."""
    queued = []
    for row in selection:
        if row["status"] == Status.PROCESSING:
            released = store.release_expired(actor, file_ids=[row["id"]])
            if not released:
                log.warning("file #%s not released: its claim is live again or it moved on", row["id"])
            queued += released
            continue
        try:
            store.transition(row["id"], Status.QUEUED, actor,
                             message=f"requeued for reprocessing from {row['raw_key']} (was {row['status']})")
        except TransitionError as exc:
            log.warning("file #%s not requeued: %s", row["id"], exc)
            continue
        queued.append(row["id"])
    return queued
