"""The Postgres status store's writes: files, their history, API calls and quality results. Reads are
`StatusStore.reads` (filegate.status.queries), on the same pooled connections; the schema is filegate.status.schema.

Each public method is one transaction. Claiming is a conditional UPDATE over rows locked with SKIP LOCKED,
so two runs never hold the same file.
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
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from filegate.status.lifecycle import ALLOWED, TERMINAL, Status, TransitionError, check
from filegate.status.queries import StatusQueries
from filegate.status.schema import apply_migrations
from filegate.storage.database import connect

log = logging.getLogger(__name__)


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
            cur.execute("SELECT status FROM file WHERE id = %s FOR UPDATE", (file_id,))
            row = cur.fetchone()
            if row is None:
                raise LookupError(f"no file with id {file_id}")
            current = Status(row["status"])
            check(current, target, reason=error)
            cur.execute(
                "UPDATE file SET status = %s, error = %s, updated_at = now(),"
                " outputs = CASE WHEN %s::jsonb IS NULL THEN outputs ELSE outputs || %s::jsonb END,"
                " finished_at = CASE WHEN %s THEN now() ELSE NULL END,"
                " last_dag_id = coalesce(%s, last_dag_id), last_run_id = coalesce(%s, last_run_id),"
                " last_task_id = coalesce(%s, last_task_id) WHERE id = %s",
                (target, error, Jsonb(outputs) if outputs is not None else None,
                 Jsonb(outputs) if outputs is not None else None, target in TERMINAL,
                 actor.dag_id, actor.run_id, actor.task_id, file_id),
            )
            self._event(cur, file_id, current, target, actor, error or message)
            return current

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
              limit: int = 100) -> list[dict[str, Any]]:
        """Atomically takes queued files for this run. A retry of the same run takes back what it held."""
        with self._tx() as cur:
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
                "UPDATE file SET status = 'processing', claimed_at = now(), attempts = attempts + 1,"
                " updated_at = now(), error = NULL, last_dag_id = %s, last_run_id = %s, last_task_id = %s"
                " WHERE id = ANY(%s) RETURNING *",
                (actor.dag_id, actor.run_id, actor.task_id, ids),
            )
            claimed = cur.fetchall()
            for r in rows:
                if r["status"] == Status.QUEUED:
                    self._event(cur, r["id"], Status.QUEUED, Status.PROCESSING, actor, "claimed")
            return sorted(claimed, key=lambda r: r["id"])

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


__all__ = ["ALLOWED", "Actor", "Registration", "Status", "StatusStore", "TransitionError"]
