"""Sends the callbacks that are due: for each file of a feed whose upload named a callback URL (params
`callback_url`) and that has reached a terminal status, one signed POST per arrival at that status.

The ledger is the `api_call` table, as for record batches: each attempt is a row (batch_no CALLBACK_BATCH) under
the idempotency key `fg-callback-<file id>-<event id>`, where the event is the file's entry into its terminal
status. A key with an acknowledged (2xx) row is never sent again, so a retried task or a second run sends
nothing twice; a reprocessed file that finishes again is a new event, hence a new callback. The receiver gets the
same key in `Idempotency-Key` and should store it: a crash between its 2xx and our row (or a timeout after it
acted) makes us send once more with that key.

A callback that keeps failing is tried again by the feed's next runs, up to MAX_ATTEMPTS attempts in all, then
given up; one the receiver refuses (a 4xx other than 408/409/425/429) or redirects (never followed: it could lead
off the allow list) is given up at once, and so is a URL whose host the feed no longer allows (without a
request). A given-up key gets a closing row (error `given up: …`).
Each outcome is a line in the file's history.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import requests
from psycopg.rows import dict_row

from filegate.callbacks.allow_list import CallbackRefused, check_callback_url
from filegate.callbacks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from filegate.contracts.model import Contract
from filegate.delivery.client import EXCERPT_CHARS, RETRYABLE_4XX
from filegate.status.lifecycle import TERMINAL
from filegate.status.store import Actor, StatusStore
from filegate.storage.database import connect

log = logging.getLogger(__name__)
CALLBACK_PARAM = "callback_url"  # where an upload's checked callback URL is kept: file.params
CALLBACK_BATCH = -1  # api_call.batch_no of a callback attempt (record batches count from 0)
MAX_ATTEMPTS = 8  # in all, over every run; then the callback is given up
ATTEMPTS_PER_RUN = 3
LOOKBACK_DAYS = 30  # files created longer ago are no longer called back
PER_RUN = 200  # callbacks one run sends at most; the rest are due for the next run

DUE_SQL = """
WITH finished AS (
    SELECT f.id, f.feed, f.name, f.status, f.error, f.sha256, f.raw_key, f.outputs, f.finished_at,
           f.params ->> 'callback_url' AS url,
           (SELECT max(e.id) FROM file_event e
             WHERE e.file_id = f.id AND e.to_status = f.status
               AND e.from_status IS DISTINCT FROM e.to_status) AS event_id
      FROM file f
     WHERE f.feed = %(feed)s AND f.status = ANY(%(terminal)s) AND f.params ? 'callback_url'
       AND f.created_at > now() - make_interval(days => %(lookback)s)
)
SELECT finished.*, 'fg-callback-' || finished.id || '-' || finished.event_id AS key,
       (SELECT count(*) FROM api_call a
         WHERE a.file_id = finished.id AND a.batch_no = %(batch)s
           AND a.idempotency_key = 'fg-callback-' || finished.id || '-' || finished.event_id) AS attempts
  FROM finished
 WHERE finished.event_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM api_call a
                    WHERE a.file_id = finished.id AND a.batch_no = %(batch)s
                      AND (a.acknowledged OR a.error LIKE 'given up:%%')
                      AND a.idempotency_key = 'fg-callback-' || finished.id || '-' || finished.event_id)
 ORDER BY finished.id
 LIMIT %(limit)s
"""


class Poster(Protocol):
    def post(self, url: str, *, data: bytes, headers: dict[str, str], timeout: float,
             allow_redirects: bool) -> Any: ...


@dataclass(frozen=True)
class DueCallback:
    file_id: int
    url: str
    key: str
    attempts: int
    body: dict[str, Any]


@dataclass
class CallbackReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # tried this run, due again next run
    given_up: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def callback_body(row: dict[str, Any]) -> dict[str, Any]:
    """What the receiver gets: the file, its terminal status and reason, its output keys and, for a split PDF,
    the parts' keys."""
    outputs = row["outputs"] or {}
    return {"event": "file.finished", "idempotency_key": row["key"], "file_id": row["id"], "feed": row["feed"],
            "name": row["name"], "status": row["status"], "reason": row["error"], "sha256": row["sha256"],
            "raw_key": row["raw_key"], "finished_at": _iso(row["finished_at"]), "outputs": outputs,
            "parts": outputs.get("pdf") or []}


def due_callbacks(store: StatusStore, feed: str) -> list[DueCallback]:
    with connect(store.dsn, source="FILEGATE_DB_URL", row_factory=dict_row) as conn:
        rows = conn.execute(DUE_SQL, {"feed": feed, "terminal": sorted(str(s) for s in TERMINAL),
                                      "lookback": LOOKBACK_DAYS, "batch": CALLBACK_BATCH, "limit": PER_RUN}).fetchall()
    return [DueCallback(row["id"], row["url"], row["key"], int(row["attempts"]), callback_body(row)) for row in rows]


def _excerpt(text: str) -> str:
    return text[:EXCERPT_CHARS]


def send_callbacks(store: StatusStore, contract: Contract, actor: Actor, *, secret: bytes,
                   poster: Poster | None = None, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.time) -> CallbackReport:
    """Sends every due callback of the feed; see the module's docstring for the rules."""
    settings = contract.callbacks
    report = CallbackReport()
    if settings is None:
        return report
    session = poster or requests.Session()
    for due in due_callbacks(store, contract.name):
        try:
            check_callback_url(due.url, feed=contract.name, allowed_hosts=settings.allowed_hosts,
                               allow_http=settings.allow_http)
        except CallbackRefused as exc:
            _record(store, due, attempt=due.attempts + 1, status_code=None, latency_ms=0.0, acknowledged=False,
                    error=f"given up: refused: {exc}")
            store.record_note([due.file_id], f"callback not sent: {exc}", actor)
            report.refused.append(due.file_id)
            continue
        _attempt(store, session, due, settings.timeout_s, secret, actor, report, sleep, clock)
    if report.sent or report.failed or report.given_up or report.refused:
        log.info("callbacks of feed %s: sent %s, failed %s, given up %s, refused %s", contract.name, report.sent,
                 report.failed, report.given_up, report.refused)
    return report


def _attempt(store: StatusStore, session: Poster, due: DueCallback, timeout_s: float, secret: bytes, actor: Actor,
             report: CallbackReport, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    body = json.dumps(due.body, separators=(",", ":"), sort_keys=True).encode()
    attempt = due.attempts
    error = "not attempted"
    refused = False
    for n in range(ATTEMPTS_PER_RUN):
        if attempt >= MAX_ATTEMPTS:
            break
        attempt += 1
        if n:
            sleep(min(2.0 ** n, 10.0))
        timestamp = int(clock())
        headers = {"Content-Type": "application/json", "Idempotency-Key": due.key,
                   TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}
        started = time.perf_counter()
        try:
            # A redirect is not followed: it could lead to a host the allow list does not name.
            response = session.post(due.url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
            _record(store, due, attempt=attempt, status_code=None,
                    latency_ms=(time.perf_counter() - started) * 1000, acknowledged=False, error=_excerpt(error))
            continue
        latency_ms = (time.perf_counter() - started) * 1000
        ok = 200 <= response.status_code < 300
        _record(store, due, attempt=attempt, status_code=response.status_code, latency_ms=latency_ms,
                acknowledged=ok, excerpt=_excerpt(response.text or ""))
        if ok:
            store.record_note([due.file_id], f"callback sent: {due.body['status']} to {due.url} "
                                             f"(HTTP {response.status_code}, attempt {attempt})", actor)
            report.sent.append(due.file_id)
            return
        error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error += " (a redirect, not followed: give the final URL in the upload)"
            refused = True
            break
        if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_4XX:
            refused = True  # the receiver refuses this request: the same one would be refused again
            break
    if attempt >= MAX_ATTEMPTS or refused:
        store.record_note([due.file_id], f"callback given up after {attempt} attempt(s): {error}", actor)
        _record(store, due, attempt=attempt, status_code=None, latency_ms=0.0, acknowledged=False,
                error=f"given up: {error}")
        report.given_up.append(due.file_id)
    else:
        store.record_note([due.file_id], f"callback failed ({error}, attempt {attempt} of {MAX_ATTEMPTS}); "
                                         "the feed's next run tries again", actor)
        report.failed.append(due.file_id)


def _record(store: StatusStore, due: DueCallback, *, attempt: int, status_code: int | None, latency_ms: float,
            acknowledged: bool, excerpt: str | None = None, error: str | None = None) -> None:
    store.record_api_call(file_id=due.file_id, batch_no=CALLBACK_BATCH, idempotency_key=due.key, url=due.url,
                          records=0, attempt=attempt, status_code=status_code, latency_ms=latency_ms,
                          acknowledged=acknowledged, response_excerpt=excerpt, error=error)
