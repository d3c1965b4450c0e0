"""Delivery slots in the status store (migration 0005): the SQL behind filegate.schedule, on the store's pooled
connections (`StatusStore.slots`). Slot times and states are computed by filegate.schedule.slots; this module only
records and reads them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

import psycopg

Borrow = Callable[[], AbstractContextManager[psycopg.Cursor[dict[str, Any]]]]
SLOT_COLUMNS = ("feed", "expected_at", "deadline_at", "local_day", "pattern", "files_expected")
_INSERT = (f"INSERT INTO delivery_slot ({', '.join(SLOT_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s)"
           " ON CONFLICT (feed, expected_at) DO NOTHING")
_FILES = ("coalesce((SELECT jsonb_agg(jsonb_build_object('file_id', f.id, 'name', f.name, 'status', f.status,"
          " 'arrived_at', l.arrived_at) ORDER BY l.arrived_at) FROM delivery_slot_file l JOIN file f"
          " ON f.id = l.file_id WHERE l.slot_id = s.id), '[]'::jsonb) AS files")


class SlotLedger:
    def __init__(self, borrow: Borrow) -> None:
        self._tx = borrow

    def add(self, slots: Sequence[dict[str, Any]]) -> int:
        """Records slots not yet known (keyed by feed and time); returns how many were new."""
        if not slots:
            return 0
        with self._tx() as cur:
            cur.executemany(_INSERT, [tuple(s[c] for c in SLOT_COLUMNS) for s in slots], returning=False)
            return max(cur.rowcount, 0)

    def attach(self, slot: dict[str, Any], file_id: int, arrived_at: datetime) -> bool:
        """Counts a file for a slot (recording the slot if new); False when the file already counts for one."""
        with self._tx() as cur:
            cur.execute(_INSERT, tuple(slot[c] for c in SLOT_COLUMNS))
            cur.execute("SELECT id FROM delivery_slot WHERE feed = %s AND expected_at = %s",
                        (slot["feed"], slot["expected_at"]))
            slot_id = cur.fetchone()["id"]  # type: ignore[index]
            cur.execute("INSERT INTO delivery_slot_file (slot_id, file_id, arrived_at) VALUES (%s, %s, %s)"
                        " ON CONFLICT (file_id) DO NOTHING", (slot_id, file_id, arrived_at))
            return cur.rowcount == 1

    def unmatched_files(self, feed: str, since: datetime, file_ids: Collection[int] | None = None
                        ) -> list[dict[str, Any]]:
        """Files of `feed` registered since `since` (with a raw copy) that count for no slot yet, oldest first."""
        with self._tx() as cur:
            cur.execute(
                "SELECT f.id, f.name, f.created_at FROM file f WHERE f.feed = %(feed)s AND f.created_at >= %(since)s"
                " AND f.sha256 IS NOT NULL AND (%(ids)s::bigint[] IS NULL OR f.id = ANY(%(ids)s))"
                " AND NOT EXISTS (SELECT 1 FROM delivery_slot_file l WHERE l.file_id = f.id) ORDER BY f.id",
                {"feed": feed, "since": since, "ids": list(file_ids) if file_ids is not None else None})
            return cur.fetchall()

    def open_slots(self, feed: str) -> list[dict[str, Any]]:
        """Slots that may still change state (expected or missed), with their files' arrival times."""
        with self._tx() as cur:
            cur.execute(
                "SELECT s.*, coalesce(array_agg(l.arrived_at) FILTER (WHERE l.file_id IS NOT NULL), '{}')"
                " AS arrivals FROM delivery_slot s LEFT JOIN delivery_slot_file l ON l.slot_id = s.id"
                " WHERE s.feed = %s AND s.state IN ('expected', 'missed') GROUP BY s.id ORDER BY s.expected_at",
                (feed,))
            return cur.fetchall()

    def set_state(self, slot_id: int, state: str, *, satisfied_at: datetime | None,
                  delay_seconds: int | None) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE delivery_slot SET state = %(state)s, satisfied_at = %(satisfied)s, delay_seconds = %(delay)s,"
                " state_changed_at = clock_timestamp(),"
                " missed_at = CASE WHEN %(state)s = 'missed' THEN coalesce(missed_at, clock_timestamp())"
                " ELSE missed_at END WHERE id = %(id)s",
                {"state": state, "satisfied": satisfied_at, "delay": delay_seconds, "id": slot_id})

    def unannounced(self, feeds: Collection[str]) -> list[dict[str, Any]]:
        """Late and missed slots of `feeds` whose current state has not been alerted yet, oldest change first."""
        with self._tx() as cur:
            cur.execute(f"SELECT s.*, {_FILES} FROM delivery_slot s WHERE s.state IN ('late', 'missed')"
                        " AND s.alerted_state IS DISTINCT FROM s.state AND s.feed = ANY(%s)"
                        " ORDER BY s.state_changed_at, s.id", (sorted(feeds),))
            return cur.fetchall()

    def mark_announced(self, slot_id: int, state: str) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE delivery_slot SET alerted_state = %s, alerted_at = clock_timestamp() WHERE id = %s",
                        (state, slot_id))

    def between(self, first: date, last: date, *, feed: str | None = None,
                feeds: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Slots whose local day is in [first, last], with their files; `feeds` limits them to those feeds
        (None: any feed; empty: none), like every read of the store."""
        if feeds is not None and not feeds:
            return []
        with self._tx() as cur:
            cur.execute(
                f"SELECT s.id, s.feed, s.expected_at, s.deadline_at, s.local_day, s.pattern, s.files_expected,"
                f" s.state, s.satisfied_at, s.delay_seconds, s.missed_at, s.state_changed_at, s.alerted_at, {_FILES}"
                " FROM delivery_slot s WHERE s.local_day BETWEEN %(first)s AND %(last)s"
                " AND (%(feed)s::text IS NULL OR s.feed = %(feed)s)"
                " AND (%(feeds)s::text[] IS NULL OR s.feed = ANY(%(feeds)s)) ORDER BY s.feed, s.expected_at",
                {"first": first, "last": last, "feed": feed, "feeds": sorted(feeds) if feeds is not None else None})
            return cur.fetchall()
