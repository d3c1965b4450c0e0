"""The Postgres status store: files, their history, API calls and quality results.

Each public method is one transaction. Claiming is a conditional UPDATE over rows locked with SKIP LOCKED,
so two runs never hold the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from filegate.status.lifecycle import ALLOWED, TERMINAL, Status, TransitionError, check

log = logging.getLogger(__name__)
MIGRATION_LOCK = 724_311_001


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


def migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("filegate.status") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


class StatusStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @classmethod
    def connect(cls, dsn: str, *, migrate: bool = True) -> StatusStore:
        store = cls(dsn)
        if migrate:
            store.migrate()
        return store

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migration")
            done = {row["version"] for row in cur.fetchall()}
            for version, name, sql in migrations():
                if version in done:
                    continue
                log.info("applying status-store migration %s", name)
                cur.execute(sql)  # type: ignore[arg-type]
                cur.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (version, name))
                applied.append(name)
        return applied

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
                 params: dict[str, Any] | None = None) -> Registration:
        """Records a file whose raw copy is complete in S3: `downloaded`, or `duplicate` of the same content."""
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{feed}:{sha256}",))
            cur.execute("SELECT id, status FROM file WHERE raw_key = %s", (raw_key,))
            existing = cur.fetchone()
            if existing:
                return Registration(existing["id"], Status(existing["status"]), created=False)
            cur.execute(
                "SELECT id, name FROM file WHERE feed = %s AND sha256 = %s AND status <> 'duplicate'",
                (feed, sha256),
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
                reason = (f"same content (sha256 {sha256[:12]}…) as file #{original['id']} "
                          f"{original['name']!r}, already registered for feed {feed}")
                cur.execute(
                    "UPDATE file SET status = 'duplicate', sha256 = %s, duplicate_of = %s, error = %s,"
                    " finished_at = now(), updated_at = now() WHERE id = %s",
                    (sha256, original["id"], reason, file_id),
                )
                self._event(cur, file_id, Status.PENDING, Status.DUPLICATE, actor, reason)
                return Registration(file_id, Status.DUPLICATE, created=True, duplicate_of=original["id"])
            cur.execute("UPDATE file SET status = 'downloaded', sha256 = %s, updated_at = now() WHERE id = %s",
                        (sha256, file_id))
            self._event(cur, file_id, Status.PENDING, Status.DOWNLOADED, actor, f"{size_bytes} bytes")
            return Registration(file_id, Status.DOWNLOADED, created=True)

    def transition(self, file_id: int, target: Status, actor: Actor, *, message: str | None = None,
                   error: str | None = None, outputs: dict[str, Any] | None = None) -> Status:
        """Moves one file to `target` if the lifecycle allows it; returns the previous status."""
        with self._tx() as cur:
            cur.execute("SELECT status FROM file WHERE id = %s FOR UPDATE", (file_id,))
            row = cur.fetchone()
            if row is None:
                raise LookupError(f"no file with id {file_id}")
            current = Status(row["status"])
            check(current, target)
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
            cur.execute(
                "INSERT INTO api_call (file_id, batch_no, idempotency_key, url, records, attempt, status_code,"
                " latency_ms, response_excerpt, error, acknowledged) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (file_id, batch_no, idempotency_key, url, records, attempt, status_code, latency_ms,
                 response_excerpt, error, acknowledged),
            )

    # -- reads -------------------------------------------------------------------------------------------

    def acknowledged_keys(self, file_id: int) -> set[str]:
        with self._tx() as cur:
            cur.execute("SELECT DISTINCT idempotency_key FROM api_call WHERE file_id = %s AND acknowledged",
                        (file_id,))
            return {r["idempotency_key"] for r in cur.fetchall()}

    def get_file(self, file_id: int) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT * FROM file WHERE id = %s", (file_id,))
            return cur.fetchone()

    def find_by_raw_keys(self, raw_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM file WHERE raw_key = ANY(%s)", (list(raw_keys),))
            return {r["raw_key"]: r for r in cur.fetchall()}

    def list_files(self, *, feed: str | None = None, status: str | None = None,
                   limit: int = 1000) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM file WHERE (%(feed)s::text IS NULL OR feed = %(feed)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s) ORDER BY id DESC LIMIT %(limit)s",
                {"feed": feed, "status": status, "limit": limit},
            )
            return cur.fetchall()

    def history(self, file_id: int) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM file_event WHERE file_id = %s ORDER BY id", (file_id,))
            return cur.fetchall()

    def api_calls(self, file_id: int) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM api_call WHERE file_id = %s ORDER BY id", (file_id,))
            return cur.fetchall()

    def quality(self, file_id: int) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT * FROM quality_result WHERE file_id = %s", (file_id,))
            return cur.fetchone()


__all__ = ["ALLOWED", "Actor", "Registration", "Status", "StatusStore", "TransitionError"]
