"""The Postgres status store's writes: files, their history, API calls and quality results. Reads are
`StatusStore.reads` (filegate.status.queries), on the same pooled connections; the schema is filegate.status.schema.

Each public method is one transaction. Claiming is a conditional UPDATE over rows locked with SKIP LOCKED,
so two runs never hold the same file. A claim is a lease (filegate.status.lease): a file whose holder stopped
renewing it goes back to `queued`, and a status change out of `processing` is fenced on the claiming run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from filegate.status.lease import MAX_EXPIRED_CLAIMS, lease_seconds
from filegate.status.lifecycle import ALLOWED, TERMINAL, Status, TransitionError, check
from filegate.status.queries import StatusQueries
from filegate.status.schema import apply_migrations
from filegate.status.schema_history import SchemaHistory
from filegate.status.slot_ledger import SlotLedger
from filegate.storage.database import connect

log = logging.getLogger(__name__)
EXPIRED_CLAIM_MARK = "claim of"  # how a release's history line starts: "claim of run … expired at …"


@dataclass(frozen=True)
class Actor:
    """Who changes a status: an Airflow task instance, the CLI, a Lambda handler or a test."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls(task_id="cli")


class ClaimLost(TransitionError):
    """This run no longer holds the file: its lease ran out and another run (or reprocess_files) took it over."""


@dataclass(frozen=True)
class Registration:
    file_id: int
    status: Status
    created: bool
    duplicate_of: int | None = None


def job_key(sha256: str, job_params: dict[str, Any] | None) -> str:
    """What makes a file one job: its content, and the processing parameters it came with (an upload's page map).
    Without parameters it is the sha256 itself, so duplicates and idempotency keys of such files never change."""
    if not job_params:
        return sha256
    canonical = json.dumps(job_params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{sha256}\n{canonical}".encode()).hexdigest()


_INHERITED: list[Any] = []


def _close_all(connections: list[psycopg.Connection[Any]]) -> None:
    for conn in connections:
        conn.close()


class StatusStore:
    """Connections are kept and reused (a few idle ones, shared by threads): an `api_call` row per attempt must
    not cost a new connection, which was most of a one-record request's time. A forked child opens its own."""

    MAX_IDLE = 8

    def __init__(self, dsn: str, *, source: str = "FILEGATE_DB_URL") -> None:
        self.dsn = dsn
        self.source = source  # named in connection errors instead of the DSN, which may hold a password
        self.reads = StatusQueries(dsn, source=source, borrow=self._tx)  # every read, on this store's connections
        self.slots = SlotLedger(self._tx)  # expected deliveries (filegate.schedule)
        self.schemas = SchemaHistory(self._tx)  # schema versions and drift (filegate.schema_drift)
        self._idle: list[psycopg.Connection[dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        weakref.finalize(self, _close_all, self._idle)

    @classmethod
    def connect(cls, dsn: str, *, migrate: bool = True, source: str = "FILEGATE_DB_URL") -> StatusStore:
        store = cls(dsn, source=source)
        if migrate:
            store.migrate()
        return store

    def _acquire(self) -> psycopg.Connection[dict[str, Any]]:
        with self._lock:
            if self._pid != os.getpid():
                # Forked: the parent's connections are not ours to use or close (closing would end the parent's
                # sessions). Kept referenced so they are never finalized here; forked children leave by _exit.
                _INHERITED.extend(self._idle)
                self._idle.clear()
                self._pid = os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed or conn.broken:
            # autocommit: each _tx is one explicit transaction block, and nothing stays open between them.
            conn = connect(self.dsn, source=self.source, row_factory=dict_row, autocommit=True)
        return conn

    def _release(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        if conn.closed or conn.broken:
            return
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self.MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        conn = self._acquire()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.OperationalError:
            conn.close()  # possibly broken: the next call connects afresh
            raise
        finally:
            self._release(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle[:] = list(self._idle), []
        _close_all(idle)

    def migrate(self) -> list[str]:
        """Applies pending migrations (filegate.status.schema); returns their names."""
        with self._tx() as cur:
            return apply_migrations(cur)

    # -- writes ------------------------------------------------------------------------------------------

    @staticmethod
    def _event(cur: psycopg.Cursor[Any], file_id: int, before: str | None, after: str, actor: Actor,
               message: str | None) -> None:
        cur.execute(
            "INSERT INTO file_event (file_id, from_status, to_status, dag_id, run_id, task_id, try_number, message)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (file_id, before, after, actor.dag_id, actor.run_id, actor.task_id, actor.try_number, message),
        )

    def register(self, *, feed: str, source: str, raw_key: str, name: str, sha256: str, size_bytes: int,
                 actor: Actor, source_path: str | None = None, arrived_on: date | None = None,
                 params: dict[str, Any] | None = None, job_params: dict[str, Any] | None = None) -> Registration:
        """Records a file whose raw copy is complete in S3: `downloaded`, or `duplicate` of the same job (the same
        content with the same processing parameters `job_params`; see job_key)."""
        job = job_key(sha256, job_params)
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{feed}:{job}",))
            cur.execute("SELECT id, status FROM file WHERE raw_key = %s", (raw_key,))
            existing = cur.fetchone()
            if existing:
                return Registration(existing["id"], Status(existing["status"]), created=False)
            cur.execute(
                "SELECT id, name FROM file WHERE feed = %s AND job_key = %s AND status <> 'duplicate'",
                (feed, job),
            )
            original = cur.fetchone()
            cur.execute(
                "INSERT INTO file (feed, source, source_path, name, raw_key, sha256, size_bytes, status, arrived_on,"
                " params, last_dag_id, last_run_id, last_task_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s) RETURNING id",
                (feed, source, source_path, name, raw_key, None, size_bytes, arrived_on, Jsonb(params or {}),
                 actor.dag_id, actor.run_id, actor.task_id),
            )
            file_id = cur.fetchone()["id"]  # type: ignore[index]
            self._event(cur, file_id, None, Status.PENDING, actor, f"arrived as {raw_key}")
            if original:
                same = "same content" + (" and processing parameters" if job_params else "")
                reason = (f"{same} (sha256 {sha256[:12]}…) as file #{original['id']} "
                          f"{original['name']!r}, already registered for feed {feed}")
                check(Status.PENDING, Status.DUPLICATE, reason=reason)
                cur.execute(
                    "UPDATE file SET status = 'duplicate', sha256 = %s, job_key = %s, duplicate_of = %s, error = %s,"
                    " finished_at = now(), updated_at = now() WHERE id = %s",
                    (sha256, job, original["id"], reason, file_id),
                )
                self._event(cur, file_id, Status.PENDING, Status.DUPLICATE, actor, reason)
                return Registration(file_id, Status.DUPLICATE, created=True, duplicate_of=original["id"])
            check(Status.PENDING, Status.DOWNLOADED)
            cur.execute("UPDATE file SET status = 'downloaded', sha256 = %s, job_key = %s, updated_at = now()"
                        " WHERE id = %s", (sha256, job, file_id))
            self._event(cur, file_id, Status.PENDING, Status.DOWNLOADED, actor, f"{size_bytes} bytes")
            return Registration(file_id, Status.DOWNLOADED, created=True)

    # -- ingestion pickups (FTP): a file that never reached raw/ still gets a row, a reason and a history --------

    def record_pickup_failure(self, *, feed: str, source: str, source_path: str, raw_key: str, name: str,
                              size_bytes: int | None, error: str, actor: Actor,
                              arrived_on: date | None = None) -> int:
        """Records that a listed file could not be copied to raw/: status `failed`, no sha256 (no raw copy).
        A later failure of the same source file updates that row and adds to its history."""
        check(Status.PENDING, Status.FAILED, reason=error)
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{feed}:pickup:{source_path}",))
            cur.execute(
                "SELECT id FROM file WHERE feed = %s AND source_path = %s AND status = 'failed' AND sha256 IS NULL"
                " ORDER BY id DESC LIMIT 1 FOR UPDATE", (feed, source_path))
            row = cur.fetchone()
            if row:
                cur.execute("UPDATE file SET error = %s, attempts = attempts + 1, updated_at = now(),"
                            " finished_at = now() WHERE id = %s", (error, row["id"]))
                self._event(cur, row["id"], Status.FAILED, Status.FAILED, actor, f"pickup failed again: {error}")
                return int(row["id"])
            cur.execute(
                "INSERT INTO file (feed, source, source_path, name, raw_key, size_bytes, status, error, attempts,"
                " arrived_on, finished_at, last_dag_id, last_run_id, last_task_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'failed', %s, 1, %s, now(), %s, %s, %s) RETURNING id",
                (feed, source, source_path, name, raw_key, size_bytes, error, arrived_on, actor.dag_id,
                 actor.run_id, actor.task_id),
            )
            file_id = int(cur.fetchone()["id"])  # type: ignore[index]
            self._event(cur, file_id, None, Status.PENDING, actor, f"listed as {source_path}")
            self._event(cur, file_id, Status.PENDING, Status.FAILED, actor, error)
            return file_id

    def revive_pickup(self, file_id: int, *, raw_key: str, sha256: str, size_bytes: int, actor: Actor,
                      params: dict[str, Any] | None = None) -> Registration:
        """A failed pickup whose file arrived complete on a later attempt: the same row goes on to `queued`
        (failed → queued is the lifecycle's re-run). Same content as another file leaves it `failed` with that
        reason, since a failed file may not become a duplicate and must never be loaded twice."""
        with self._tx() as cur:
            cur.execute("SELECT id, feed, status, sha256 FROM file WHERE id = %s FOR UPDATE", (file_id,))
            row = cur.fetchone()
            if row is None or row["status"] != Status.FAILED or row["sha256"] is not None:
                raise LookupError(f"file #{file_id} is not a failed pickup")
            job = job_key(sha256, None)  # an FTP pickup has no processing parameters
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{row['feed']}:{job}",))
            cur.execute("SELECT id, name FROM file WHERE feed = %s AND job_key = %s AND status <> 'duplicate'",
                        (row["feed"], job))
            original = cur.fetchone()
            if original:
                reason = (f"picked up on a later attempt as {raw_key}, but with the same content (sha256 "
                          f"{sha256[:12]}…) as file #{original['id']} {original['name']!r}: not loaded again")
                cur.execute("UPDATE file SET raw_key = %s, size_bytes = %s, duplicate_of = %s, error = %s,"
                            " params = params || %s, updated_at = now() WHERE id = %s",
                            (raw_key, size_bytes, original["id"], reason, Jsonb(params or {}), file_id))
                self._event(cur, file_id, Status.FAILED, Status.FAILED, actor, reason)
                return Registration(file_id, Status.FAILED, created=False, duplicate_of=original["id"])
            check(Status.FAILED, Status.QUEUED)
            cur.execute("UPDATE file SET raw_key = %s, sha256 = %s, job_key = %s, size_bytes = %s, status = 'queued',"
                        " error = NULL, params = params || %s, finished_at = NULL, updated_at = now(),"
                        " last_dag_id = %s, last_run_id = %s, last_task_id = %s WHERE id = %s",
                        (raw_key, sha256, job, size_bytes, Jsonb(params or {}), actor.dag_id, actor.run_id,
                         actor.task_id, file_id))
            self._event(cur, file_id, Status.FAILED, Status.QUEUED, actor,
                        f"picked up on a later attempt: {size_bytes} bytes as {raw_key}")
            return Registration(file_id, Status.QUEUED, created=False)

    def transition(self, file_id: int, target: Status, actor: Actor, *, message: str | None = None,
                   error: str | None = None, outputs: dict[str, Any] | None = None) -> Status:
        """Moves one file to `target` if the lifecycle allows it; returns the previous status."""
        with self._tx() as cur:
            cur.execute("SELECT status, last_run_id FROM file WHERE id = %s FOR UPDATE", (file_id,))
            row = cur.fetchone()
            if row is None:
                raise LookupError(f"no file with id {file_id}")
            current = Status(row["status"])
            self._fence(file_id, current, row["last_run_id"], actor)
            check(current, target, reason=error)
            cur.execute(
                "UPDATE file SET status = %s, error = %s, updated_at = now(),"
                " lease_expires_at = CASE WHEN status = 'processing' AND %s::text = 'processing' THEN lease_expires_at"
                " END,"
                " outputs = CASE WHEN %s::jsonb IS NULL THEN outputs ELSE outputs || %s::jsonb END,"
                " finished_at = CASE WHEN %s THEN now() ELSE NULL END,"
                " last_dag_id = coalesce(%s, last_dag_id), last_run_id = coalesce(%s, last_run_id),"
                " last_task_id = coalesce(%s, last_task_id) WHERE id = %s",
                (target, error, target, Jsonb(outputs) if outputs is not None else None,
                 Jsonb(outputs) if outputs is not None else None, target in TERMINAL,
                 actor.dag_id, actor.run_id, actor.task_id, file_id),
            )
            self._event(cur, file_id, current, target, actor, error or message)
            return current

    @staticmethod
    def _fence(file_id: int, current: Status, holder: str | None, actor: Actor) -> None:
        """Only the run holding a `processing` file may move it on: a run whose claim expired and was taken over
        (its task was thought dead, yet finished later) must not overwrite the new holder's outcome."""
        if current == Status.PROCESSING and actor.run_id is not None and holder not in (None, actor.run_id):
            raise ClaimLost(f"file #{file_id} is no longer held by run {actor.run_id}: its claim expired and run "
                            f"{holder} holds it now")

    def queue(self, file_ids: Sequence[int], actor: Actor, message: str = "queued for processing") -> list[int]:
        """Moves downloaded (or, for reprocessing, finished) files to `queued`; returns those it moved."""
        moved = []
        for file_id in file_ids:
            try:
                self.transition(file_id, Status.QUEUED, actor, message=message)
                moved.append(file_id)
            except TransitionError as exc:
                log.info("file %s not queued: %s", file_id, exc)
        return moved

    def claim(self, actor: Actor, *, feed: str | None = None, file_ids: Sequence[int] | None = None,
              limit: int = 100, lease_s: float | None = None) -> list[dict[str, Any]]:
        """Atomically takes queued files for this run, each for a lease of `lease_s` seconds (default
        FILEGATE_CLAIM_LEASE_S) that the run renews while it works (filegate.status.lease.keep_leases). A retry
        of the same run takes back what it held. Files of other runs whose lease ran out are queued again first
        (release_expired), in the same transaction, so they are taken here exactly once."""
        lease = lease_s or lease_seconds()
        with self._tx() as cur:
            self._release_expired(cur, actor, feed=feed, file_ids=file_ids)
            cur.execute(
                "SELECT id, status FROM file"
                " WHERE (status = 'queued' OR (status = 'processing' AND last_run_id = %(run_id)s))"
                " AND (%(feed)s::text IS NULL OR feed = %(feed)s)"
                " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
                " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"run_id": actor.run_id, "feed": feed, "ids": list(file_ids) if file_ids is not None else None,
                 "limit": limit},
            )
            rows = cur.fetchall()
            if not rows:
                return []
            for r in rows:
                if r["status"] == Status.QUEUED:  # a retry re-taking its own `processing` file changes nothing
                    check(Status.QUEUED, Status.PROCESSING)
            ids = [r["id"] for r in rows]
            cur.execute(
                "UPDATE file SET claimed_at = now(), attempts = attempts + 1,"
                " lease_expires_at = greatest(lease_expires_at, now() + make_interval(secs => %s)),"
                # A new claim starts a new delivery deadline; a retry of the same run keeps waiting where it was.
                " delivery_waiting_since = CASE WHEN status = 'queued' THEN NULL ELSE delivery_waiting_since END,"
                " delivery_retry_at = CASE WHEN status = 'queued' THEN NULL ELSE delivery_retry_at END,"
                " status = 'processing', updated_at = now(), error = NULL, last_dag_id = %s, last_run_id = %s,"
                " last_task_id = %s WHERE id = ANY(%s) RETURNING *",
                (lease, actor.dag_id, actor.run_id, actor.task_id, ids),
            )
            claimed = cur.fetchall()
            for r in rows:
                if r["status"] == Status.QUEUED:
                    self._event(cur, r["id"], Status.QUEUED, Status.PROCESSING, actor, "claimed")
            return sorted(claimed, key=lambda r: r["id"])

    def release_expired(self, actor: Actor, *, feed: str | None = None,
                        file_ids: Sequence[int] | None = None) -> list[int]:
        """Queues again the `processing` files (of `feed`, or just `file_ids`) whose claim lease ran out: the
        run holding them is gone (its task SIGKILLed, its worker scaled away). Returns their ids."""
        with self._tx() as cur:
            return self._release_expired(cur, actor, feed=feed, file_ids=file_ids)

    def _release_expired(self, cur: psycopg.Cursor[Any], actor: Actor, *, feed: str | None,
                         file_ids: Sequence[int] | None) -> list[int]:
        cur.execute(
            "SELECT id, last_dag_id, last_run_id, last_task_id, claimed_at, lease_expires_at FROM file"
            " WHERE status = 'processing' AND lease_expires_at < now()"
            " AND (%(feed)s::text IS NULL OR feed = %(feed)s)"
            " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
            " ORDER BY id FOR UPDATE SKIP LOCKED",
            {"feed": feed, "ids": list(file_ids) if file_ids is not None else None},
        )
        rows = cur.fetchall()
        if not rows:
            return []
        cur.execute("SELECT file_id, count(*) AS n FROM file_event WHERE file_id = ANY(%s)"
                    " AND from_status = 'processing' AND to_status = 'queued' AND message LIKE %s GROUP BY file_id",
                    ([r["id"] for r in rows], f"{EXPIRED_CLAIM_MARK}%"))
        expired_before = {int(r["file_id"]): int(r["n"]) for r in cur.fetchall()}
        released = []
        for r in rows:
            holder = f"run {r['last_run_id']}" + (f" ({r['last_dag_id']}.{r['last_task_id']})"
                                                  if r["last_dag_id"] else "")
            what = (f"{EXPIRED_CLAIM_MARK} {holder} expired at {_utc(r['lease_expires_at'])} with no heartbeat since "
                    f"(claimed {_utc(r['claimed_at'])})")
            times = expired_before.get(int(r["id"]), 0) + 1
            if times >= MAX_EXPIRED_CLAIMS:
                # A file whose every run dies (memory, a native crash) would otherwise loop forever.
                reason = (f"{what}: the run processing it died {times} times, so it is not queued again; "
                          "find the cause in those runs' task logs, then re-run it with reprocess_files")
                check(Status.PROCESSING, Status.FAILED, reason=reason)
                cur.execute("UPDATE file SET status = 'failed', error = %s, lease_expires_at = NULL,"
                            " delivery_waiting_since = NULL, delivery_retry_at = NULL, updated_at = now(),"
                            " finished_at = now() WHERE id = %s", (reason, r["id"]))
                log.error("file #%s: %s", r["id"], reason)
                self._event(cur, r["id"], Status.PROCESSING, Status.FAILED, actor, reason)
                continue
            message = (f"{what}: its task was killed or lost; queued again and processed from the raw copy by "
                       "the next run (loads and posts are idempotent)")
            check(Status.PROCESSING, Status.QUEUED)
            cur.execute("UPDATE file SET status = 'queued', lease_expires_at = NULL, delivery_waiting_since = NULL,"
                        " delivery_retry_at = NULL, updated_at = now() WHERE id = %s", (r["id"],))
            log.warning("file #%s: %s", r["id"], message)
            self._event(cur, r["id"], Status.PROCESSING, Status.QUEUED, actor, message)
            released.append(int(r["id"]))
        return released

    def renew_leases(self, file_ids: Sequence[int], actor: Actor, *, lease_s: float | None = None) -> list[int]:
        """Extends this run's leases on the files it still holds; returns those ids (a heartbeat, not history)."""
        with self._tx() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")  # a lost heartbeat is renewed at the next tick
            cur.execute(
                "UPDATE file SET lease_expires_at = greatest(lease_expires_at, now() + make_interval(secs => %s))"
                " WHERE id = ANY(%s) AND status = 'processing' AND last_run_id IS NOT DISTINCT FROM %s RETURNING id",
                (lease_s or lease_seconds(), list(file_ids), actor.run_id),
            )
            return [int(r["id"]) for r in cur.fetchall()]

    def note_delivery_waiting(self, file_id: int, actor: Actor, *, message: str, since: datetime,
                              retry_at: datetime, lease_s: float | None = None) -> None:
        """Records in the file's history that its delivery waits for the API (the status stays `processing`),
        starts its delivery deadline at `since` if not started, sets the earliest next post, and keeps the
        claim's lease past that retry, so the file is not taken from a run that is only waiting."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE file SET delivery_waiting_since = coalesce(delivery_waiting_since, %s),"
                " delivery_retry_at = %s, updated_at = now(),"
                " lease_expires_at = greatest(lease_expires_at, %s + make_interval(secs => %s))"
                " WHERE id = %s AND status = 'processing' AND last_run_id IS NOT DISTINCT FROM %s RETURNING id",
                (since, retry_at, retry_at, lease_s or lease_seconds(), file_id, actor.run_id),
            )
            if cur.fetchone() is None:
                raise ClaimLost(f"file #{file_id} is no longer held by run {actor.run_id}")
            self._event(cur, file_id, Status.PROCESSING, Status.PROCESSING, actor, message)

    def save_outputs(self, file_id: int, outputs: dict[str, Any]) -> None:
        """Records where a file's outputs are while it is still being processed (not a status change)."""
        with self._tx() as cur:
            cur.execute("UPDATE file SET outputs = outputs || %s, updated_at = now() WHERE id = %s",
                        (Jsonb(outputs), file_id))

    def record_quality(self, file_id: int, *, rows_total: int, rows_valid: int, rows_rejected: int,
                       inferred_schema: dict[str, Any], column_stats: dict[str, Any],
                       issues: list[dict[str, Any]]) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO quality_result (file_id, rows_total, rows_valid, rows_rejected, inferred_schema,"
                " column_stats, issues) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (file_id) DO UPDATE SET rows_total = EXCLUDED.rows_total,"
                " rows_valid = EXCLUDED.rows_valid, rows_rejected = EXCLUDED.rows_rejected,"
                " inferred_schema = EXCLUDED.inferred_schema, column_stats = EXCLUDED.column_stats,"
                " issues = EXCLUDED.issues, created_at = now()",
                (file_id, rows_total, rows_valid, rows_rejected, Jsonb(inferred_schema), Jsonb(column_stats),
                 Jsonb(issues)),
            )

    def record_api_call(self, *, file_id: int, batch_no: int, idempotency_key: str, url: str, records: int,
                        attempt: int, status_code: int | None, latency_ms: float, acknowledged: bool,
                        response_excerpt: str | None = None, error: str | None = None) -> None:
        with self._tx() as cur:
            # One row per HTTP attempt: not waiting for the WAL flush keeps this off the request's critical path.
            # A row lost in a database crash is harmless: the batch is posted again with the same idempotency key
            # and the API answers from its idempotency store.
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(
                "INSERT INTO api_call (file_id, batch_no, idempotency_key, url, records, attempt, status_code,"
                " latency_ms, response_excerpt, error, acknowledged) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (file_id, batch_no, idempotency_key, url, records, attempt, status_code, latency_ms,
                 response_excerpt, error, acknowledged),
            )

    def record_note(self, file_ids: Sequence[int], message: str, actor: Actor) -> list[int]:
        """Adds `message` to each file's history without changing its status (from = to = the current status),
        e.g. who asked the Filegate page to reprocess it; returns the ids that exist. Give the actor no task_id:
        a history entry without one is never listed as a step of the file (it has no task log)."""
        with self._tx() as cur:
            cur.execute("SELECT id, status FROM file WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                        (list(file_ids),))
            rows = cur.fetchall()
            for row in rows:
                self._event(cur, row["id"], row["status"], row["status"], actor, message)
            return [int(row["id"]) for row in rows]


def _utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "an unknown time"


__all__ = ["ALLOWED", "Actor", "ClaimLost", "Registration", "Status", "StatusStore", "TransitionError"]
