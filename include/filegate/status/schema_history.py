"""Schema versions and drift records in the status store (migration 0006), on the store's pooled connections
(`StatusStore.schemas`). What counts as a change is filegate.schema_drift; this module records and reads.

Two files of a feed processed at once with the same new schema upsert one version: the (feed, fingerprint)
constraint keeps one row, and a per-feed advisory lock numbers versions without gaps or clashes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from filegate.schema_drift import fingerprint

Borrow = Callable[[], AbstractContextManager[psycopg.Cursor[dict[str, Any]]]]
# What the feed's policy did with a drifted file; `not_accepted`: evolve or warn, but the file was quarantined
# for another reason, so its schema did not become a version.
ACTIONS = {"evolve": "evolved", "warn": "warned", "freeze": "frozen"}
_VERSION = "v.version, v.fingerprint, v.columns, v.profile, v.file_id, v.last_file_id, v.created_at, v.last_seen_at"


class SchemaHistory:
    def __init__(self, borrow: Borrow) -> None:
        self._tx = borrow

    def current(self, feed: str) -> dict[str, Any] | None:
        """The schema of the feed's latest accepted file: {version, fingerprint, columns, profile, file_id}
        (JSON-ready: it travels in Lambda events)."""
        with self._tx() as cur:
            cur.execute("SELECT v.version, v.fingerprint, v.columns, v.profile, v.file_id FROM schema_version v"
                        " WHERE v.feed = %s"
                        " ORDER BY v.last_file_id DESC NULLS LAST, v.version DESC LIMIT 1", (feed,))
            return cur.fetchone()

    def versions(self, feed: str) -> list[dict[str, Any]]:
        """Every version of the feed, oldest first, each with the file that introduced it."""
        with self._tx() as cur:
            cur.execute(f"SELECT {_VERSION}, f.name AS file_name FROM schema_version v"
                        " LEFT JOIN file f ON f.id = v.file_id WHERE v.feed = %s ORDER BY v.version", (feed,))
            return cur.fetchall()

    def drift_of(self, file_id: int) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT file_id, feed, policy, action, from_version, to_version, summary, changes, columns,"
                        " created_at FROM schema_drift WHERE file_id = %s", (file_id,))
            return cur.fetchone()

    def record(self, file_id: int, feed: str, columns: list[dict[str, Any]], *, accepted: bool,
               profile: dict[str, Any] | None = None, drift: dict[str, Any] | None = None) -> int | None:
        """After a file is processed: its schema becomes (or refreshes) a version of the feed when the file was
        `accepted`, and its drift (schema_check's record: changes, policy, verdict) is kept. Returns the
        version the file's schema is, or None when it is not one (frozen or quarantined)."""
        if not columns:
            return None
        version = None
        with self._tx() as cur:
            if accepted:
                version = self._upsert_version(cur, file_id, feed, columns, profile or {})
            if drift is not None:
                action = ACTIONS[drift["verdict"]] if accepted or drift["verdict"] == "freeze" else "not_accepted"
                cur.execute(
                    "INSERT INTO schema_drift (file_id, feed, policy, action, from_version, to_version, summary,"
                    " changes, columns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (file_id) DO UPDATE SET policy = EXCLUDED.policy, action = EXCLUDED.action,"
                    " from_version = EXCLUDED.from_version, to_version = EXCLUDED.to_version,"
                    " summary = EXCLUDED.summary, changes = EXCLUDED.changes, columns = EXCLUDED.columns,"
                    " created_at = now()",
                    (file_id, feed, drift["policy"], action, drift.get("from_version"), version, drift["summary"],
                     Jsonb(drift["changes"]), Jsonb(columns)))
        return version

    @staticmethod
    def _upsert_version(cur: psycopg.Cursor[dict[str, Any]], file_id: int, feed: str, columns: list[dict[str, Any]],
                        profile: dict[str, Any]) -> int:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"schema_version:{feed}",))
        cur.execute(
            "INSERT INTO schema_version (feed, version, fingerprint, columns, profile, file_id, last_file_id)"
            " SELECT %(feed)s, coalesce(max(version), 0) + 1, %(fp)s, %(columns)s, %(profile)s, %(file)s, %(file)s"
            " FROM schema_version WHERE feed = %(feed)s"
            " ON CONFLICT (feed, fingerprint) DO UPDATE SET last_seen_at = now(),"
            " last_file_id = GREATEST(schema_version.last_file_id, EXCLUDED.last_file_id)"
            " RETURNING version",
            {"feed": feed, "fp": fingerprint(columns), "columns": Jsonb(columns), "profile": Jsonb(profile),
             "file": file_id})
        return int(cur.fetchone()["version"])  # type: ignore[index]
