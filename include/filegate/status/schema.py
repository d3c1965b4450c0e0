"""The status store's schema: the SQL migrations in status/migrations/, applied in order, each once."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import psycopg

log = logging.getLogger(__name__)
MIGRATION_LOCK = 724_311_001  # one migrating process at a time (an advisory lock held by the transaction)


def migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("filegate.status") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def apply_migrations(cur: psycopg.Cursor[Any]) -> list[str]:
    """Applies the migrations not yet recorded in schema_migration, inside the caller's transaction."""
    applied: list[str] = []
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
