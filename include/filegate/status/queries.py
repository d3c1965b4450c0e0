"""Every read of the status store: for the steps (one file, lookups by key or source), the Filegate UI, its
REST API and the daily report.

Lists are newest first and paginated by keyset (`id < cursor`), so page 1,000 costs what page 1 costs; every
filter combination has an index ending in `id` (migration 0003). Periods are half-open UTC intervals.

`feeds=` limits any query to a set of feeds (the ones the caller may read) inside the SQL, so pages and totals
count only those; `None` means every feed and an empty set means none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from filegate.status.lifecycle import Status
from filegate.storage.database import connect

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 500
# Counting stops here: an exact count of 100,000 rows costs more than the page itself, and "10,000+" says enough.
COUNT_CAP = 10_000
FAILURE_STATUSES = (Status.FAILED.value, Status.QUARANTINED.value)
# Columns a list shows; the full row (outputs, params) comes with the detail.
HISTORY_SQL = "SELECT * FROM file_event WHERE file_id = %s ORDER BY id"
API_CALLS_SQL = "SELECT * FROM api_call WHERE file_id = %s ORDER BY id"
QUALITY_SQL = "SELECT * FROM quality_result WHERE file_id = %s"
LIST_COLUMNS = ("id, feed, source, name, raw_key, size_bytes, status, error, attempts, arrived_on, created_at,"
                " updated_at, finished_at, last_dag_id, last_run_id, last_task_id, duplicate_of")


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of UTC instants."""

    start: datetime
    end: datetime

    @classmethod
    def days(cls, first: date, last: date | None = None) -> Period:
        """Whole UTC days from `first` to `last` inclusive (one day when `last` is omitted)."""
        last = last or first
        if last < first:
            raise ValueError(f"period ends ({last}) before it starts ({first})")
        return cls(datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC))


@dataclass(frozen=True)
class FileFilter:
    feed: str | None = None
    statuses: tuple[str, ...] = ()
    period: Period | None = None
    name: str | None = None  # case-insensitive substring of the file name
    raw_key: str | None = None
    feeds: Collection[str] | None = None  # only these feeds (None: any feed; empty: no file matches)

    def __post_init__(self) -> None:
        unknown = [s for s in self.statuses if s not in {m.value for m in Status}]
        if unknown:
            raise ValueError(f"unknown status {', '.join(unknown)}; known: {', '.join(m.value for m in Status)}")


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: int | None
    total: int
    limit: int
    total_capped: bool = False  # True: at least `total` files match


@dataclass(frozen=True)
class FileDetail:
    file: dict[str, Any]
    history: list[dict[str, Any]]
    api_calls: list[dict[str, Any]]
    quality: dict[str, Any] | None
    steps: list[dict[str, Any]] = field(default_factory=list)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _feeds_clause(feeds: Collection[str] | None, column: str = "feed") -> tuple[str, dict[str, Any]]:
    if feeds is None:
        return "TRUE", {}
    return f"{column} = ANY(%(feeds)s)", {"feeds": sorted(feeds)}  # an empty array matches nothing


def _where(flt: FileFilter) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.feeds is not None:
        clause, feed_params = _feeds_clause(flt.feeds)
        clauses.append(clause)
        params.update(feed_params)
    if flt.feed:
        clauses.append("feed = %(feed)s")
        params["feed"] = flt.feed
    if len(flt.statuses) == 1:
        clauses.append("status = %(status)s")
        params["status"] = flt.statuses[0]
    elif flt.statuses:
        clauses.append("status = ANY(%(statuses)s)")
        params["statuses"] = list(flt.statuses)
    if flt.period:
        clauses.append("created_at >= %(start)s AND created_at < %(end)s")
        params.update(start=flt.period.start, end=flt.period.end)
    if flt.name:
        clauses.append("name ILIKE %(name)s")
        params["name"] = _like_pattern(flt.name)
    if flt.raw_key:
        clauses.append("raw_key = %(raw_key)s")
        params["raw_key"] = flt.raw_key
    return (" AND ".join(clauses) or "TRUE"), params


class StatusQueries:
    """Every read of the status tables; each method is one short transaction and nothing here writes. Built on
    its own (the UI, the daily report) or as `StatusStore.reads`, sharing the store's connections."""

    def __init__(self, dsn: str, *, source: str = "FILEGATE_DB_URL",
                 borrow: Callable[[], AbstractContextManager[psycopg.Cursor[dict[str, Any]]]] | None = None) -> None:
        self.dsn = dsn
        self.source = source  # named in connection errors instead of the DSN
        self._borrow = borrow  # the status store lends its pooled connections (StatusStore.reads)

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        if self._borrow is not None:
            with self._borrow() as cur:
                yield cur
            return
        with connect(self.dsn, source=self.source, row_factory=dict_row) as conn:
            conn.read_only = True
            with conn.cursor() as cur:
                yield cur

    # -- one file and the rows the steps look up ------------------------------------------------------------

    def get_file(self, file_id: int) -> dict[str, Any] | None:
        with self._cursor() as cur:
            cur.execute("SELECT * FROM file WHERE id = %s", (file_id,))
            return cur.fetchone()

    def find_by_raw_keys(self, raw_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute("SELECT * FROM file WHERE raw_key = ANY(%s)", (list(raw_keys),))
            return {r["raw_key"]: r for r in cur.fetchall()}

    def find_by_source(self, feed: str, source_paths: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Rows per source path (newest first): tells a pickup what it already copied or failed to copy."""
        with self._cursor() as cur:
            cur.execute("SELECT * FROM file WHERE feed = %s AND source_path = ANY(%s) ORDER BY id DESC",
                        (feed, list(source_paths)))
            found: dict[str, list[dict[str, Any]]] = {}
            for row in cur.fetchall():
                found.setdefault(row["source_path"], []).append(row)
            return found

    def files_of_run(self, run_id: str) -> list[dict[str, Any]]:
        """Files whose latest change came from this DAG run (for a run's summary)."""
        with self._cursor() as cur:
            cur.execute("SELECT * FROM file WHERE last_run_id = %s ORDER BY id", (run_id,))
            return cur.fetchall()

    def select_files(self, *, file_ids: Sequence[int] | None = None, feed: str | None = None,
                     arrived_from: date | None = None, arrived_to: date | None = None,
                     statuses: Sequence[str] | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        """Files matching every given filter (arrival dates inclusive; a file without one counts by created_at)."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT * FROM file WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
                " AND (%(feed)s::text IS NULL OR feed = %(feed)s)"
                " AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))"
                " AND (%(since)s::date IS NULL OR coalesce(arrived_on, created_at::date) >= %(since)s)"
                " AND (%(until)s::date IS NULL OR coalesce(arrived_on, created_at::date) <= %(until)s)"
                " ORDER BY id LIMIT %(limit)s",
                {"ids": list(file_ids) if file_ids is not None else None, "feed": feed,
                 "statuses": list(statuses) if statuses is not None else None, "since": arrived_from,
                 "until": arrived_to, "limit": limit},
            )
            return cur.fetchall()

    def acknowledged_keys(self, file_id: int) -> set[str]:
        with self._cursor() as cur:
            cur.execute("SELECT DISTINCT idempotency_key FROM api_call WHERE file_id = %s AND acknowledged",
                        (file_id,))
            return {r["idempotency_key"] for r in cur.fetchall()}

    def recent_files(self, *, feed: str | None = None, status: str | None = None,
                     limit: int = 1000) -> list[dict[str, Any]]:
        """Whole rows, newest first (the CLI's `status`, tests); the UI pages with `list_files`."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT * FROM file WHERE (%(feed)s::text IS NULL OR feed = %(feed)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s) ORDER BY id DESC LIMIT %(limit)s",
                {"feed": feed, "status": status, "limit": limit},
            )
            return cur.fetchall()

    # -- files ---------------------------------------------------------------------------------------------

    def list_files(self, flt: FileFilter, *, limit: int = 50, cursor: int | None = None) -> Page:
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        where, params = _where(flt)
        page_where = where + (" AND id < %(cursor)s" if cursor is not None else "")
        with self._cursor() as cur:
            cur.execute(f"SELECT {LIST_COLUMNS} FROM file WHERE {page_where} ORDER BY id DESC LIMIT %(limit)s",
                        {**params, "cursor": cursor, "limit": limit + 1})
            rows = cur.fetchall()
            cur.execute(f"SELECT count(*) AS n FROM (SELECT 1 FROM file WHERE {where} LIMIT %(cap)s) AS matching",
                        {**params, "cap": COUNT_CAP + 1})
            total = cur.fetchone()["n"]  # type: ignore[index]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(items=rows, next_cursor=rows[-1]["id"] if more and rows else None, total=min(total, COUNT_CAP),
                    limit=limit, total_capped=total > COUNT_CAP)

    def file_detail(self, file_id: int, *, feeds: Collection[str] | None = None) -> FileDetail | None:
        """None when there is no such file, or its feed is not in `feeds`."""
        scope, params = _feeds_clause(feeds)
        with self._cursor() as cur:
            cur.execute(f"SELECT * FROM file WHERE id = %(id)s AND {scope}", {**params, "id": file_id})
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(HISTORY_SQL, (file_id,))
            history = cur.fetchall()
            cur.execute(API_CALLS_SQL, (file_id,))
            calls = cur.fetchall()
            cur.execute(QUALITY_SQL, (file_id,))
            quality = cur.fetchone()
        return FileDetail(file=row, history=history, api_calls=calls, quality=quality, steps=_steps(history))

    def history(self, file_id: int) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(HISTORY_SQL, (file_id,))
            return cur.fetchall()

    def api_calls(self, file_id: int) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(API_CALLS_SQL, (file_id,))
            return cur.fetchall()

    def quality(self, file_id: int) -> dict[str, Any] | None:
        with self._cursor() as cur:
            cur.execute(QUALITY_SQL, (file_id,))
            return cur.fetchone()

    def exists(self, file_id: int, *, feeds: Collection[str] | None = None) -> bool:
        """Whether the file exists and (with `feeds`) belongs to one of those feeds."""
        scope, params = _feeds_clause(feeds)
        with self._cursor() as cur:
            cur.execute(f"SELECT 1 FROM file WHERE id = %(id)s AND {scope}", {**params, "id": file_id})
            return cur.fetchone() is not None

    def feeds_seen(self) -> list[str]:
        """Feeds with at least one file. A loose index scan (one probe of the (feed, id) index per feed), not
        DISTINCT over every row: the web app asks on each request that lists files."""
        with self._cursor() as cur:
            cur.execute(
                "WITH RECURSIVE seen(feed) AS ("
                " (SELECT feed FROM file ORDER BY feed LIMIT 1)"
                " UNION ALL"
                " SELECT (SELECT f.feed FROM file f WHERE f.feed > seen.feed ORDER BY f.feed LIMIT 1)"
                " FROM seen WHERE seen.feed IS NOT NULL)"
                " SELECT feed FROM seen WHERE feed IS NOT NULL")
            return [r["feed"] for r in cur.fetchall()]

    def stalled_feeds(self, *, waiting_for_s: float) -> dict[str, dict[str, int]]:
        """Feeds with files no run is working on: `processing` under a claim lease that ran out (the run holding
        it died), or `downloaded`/`queued` for more than `waiting_for_s` seconds while no run of the feed holds a
        live lease (a busy feed's backlog is not stalled). → {feed: {"expired": n, "waiting": n}}"""
        with self._cursor() as cur:
            cur.execute(
                "SELECT feed,"
                " count(*) FILTER (WHERE status = 'processing') AS expired,"
                " count(*) FILTER (WHERE status <> 'processing') AS waiting"
                " FROM file f"
                " WHERE (status = 'processing' AND lease_expires_at < now())"
                " OR (status IN ('downloaded', 'queued')"
                "     AND updated_at < now() - make_interval(secs => %(waiting)s)"
                "     AND NOT EXISTS (SELECT 1 FROM file busy WHERE busy.feed = f.feed"
                "                     AND busy.status = 'processing' AND busy.lease_expires_at >= now()))"
                " GROUP BY feed ORDER BY feed", {"waiting": waiting_for_s})
            return {r["feed"]: {"expired": int(r["expired"]), "waiting": int(r["waiting"])} for r in cur.fetchall()}

    # -- aggregates ----------------------------------------------------------------------------------------

    def counts(self, period: Period, *, feed: str | None = None,
               feeds: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Files created in the period, by feed and status."""
        scope, params = _feeds_clause(feeds)
        with self._cursor() as cur:
            cur.execute(
                "SELECT feed, status, count(*) AS files FROM file"
                " WHERE created_at >= %(start)s AND created_at < %(end)s"
                f" AND (%(feed)s::text IS NULL OR feed = %(feed)s) AND {scope}"
                " GROUP BY feed, status ORDER BY feed, status",
                {**params, "start": period.start, "end": period.end, "feed": feed},
            )
            return cur.fetchall()

    def daily_series(self, period: Period, *, feed: str | None = None,
                     feeds: Collection[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per UTC day of arrival (created_at), for the overview's charts: files by status; rows in and
        rejected by feed; processing latency (created_at → finished_at) percentiles of the files finished."""
        scope, params = _feeds_clause(feeds, "f.feed")
        args = {**params, "start": period.start, "end": period.end, "feed": feed}
        where = (f"f.created_at >= %(start)s AND f.created_at < %(end)s AND {scope}"
                 " AND (%(feed)s::text IS NULL OR f.feed = %(feed)s)")
        day = "(f.created_at AT TIME ZONE 'UTC')::date"
        latency = "extract(epoch FROM f.finished_at - f.created_at)"
        with self._cursor() as cur:
            cur.execute(f"SELECT {day} AS day, f.status, count(*) AS files FROM file f WHERE {where}"
                        " GROUP BY 1, 2 ORDER BY 1, 2", args)
            files = cur.fetchall()
            cur.execute(f"SELECT {day} AS day, f.feed, count(q.file_id) AS files,"
                        " coalesce(sum(q.rows_total), 0)::bigint AS rows_total,"
                        " coalesce(sum(q.rows_rejected), 0)::bigint AS rows_rejected"
                        f" FROM file f JOIN quality_result q ON q.file_id = f.id WHERE {where}"
                        " GROUP BY 1, 2 ORDER BY 1, 2", args)
            rows = cur.fetchall()
            cur.execute(f"SELECT {day} AS day, count(*) AS files,"
                        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {latency}) AS p50_s,"
                        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY {latency}) AS p95_s,"
                        f" max({latency}) AS max_s"
                        f" FROM file f WHERE {where} AND f.finished_at IS NOT NULL GROUP BY 1 ORDER BY 1", args)
            latencies = [{**r, **{k: _round(r[k]) for k in ("p50_s", "p95_s", "max_s")}} for r in cur.fetchall()]
        return {"files": files, "rows": rows, "latency": latencies}

    def feed_stats(self, period: Period, *, feed: str | None = None) -> list[dict[str, Any]]:
        """Per feed, for files created in the period: files by status, rows in/valid/rejected, API success
        and latency percentiles, processing latency (created_at → finished_at) percentiles."""
        args = {"start": period.start, "end": period.end, "feed": feed}
        scope = ("f.created_at >= %(start)s AND f.created_at < %(end)s"
                 " AND (%(feed)s::text IS NULL OR f.feed = %(feed)s)")
        with self._cursor() as cur:
            cur.execute(
                "SELECT f.feed, count(*) AS files,"
                " coalesce(sum(q.rows_total), 0)::bigint AS rows_in,"
                " coalesce(sum(q.rows_valid), 0)::bigint AS rows_valid,"
                " coalesce(sum(q.rows_rejected), 0)::bigint AS rows_rejected,"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.finished_at - f.created_at))"
                "   FILTER (WHERE f.finished_at IS NOT NULL) AS processing_p50_s,"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM f.finished_at - f.created_at))"
                "   FILTER (WHERE f.finished_at IS NOT NULL) AS processing_p95_s,"
                " max(extract(epoch FROM f.finished_at - f.created_at)) AS processing_max_s"
                " FROM file f LEFT JOIN quality_result q ON q.file_id = f.id"
                f" WHERE {scope} GROUP BY f.feed ORDER BY f.feed",
                args,
            )
            stats = {r["feed"]: {**r, "by_status": {}} for r in cur.fetchall()}
            cur.execute(f"SELECT f.feed, f.status, count(*) AS n FROM file f WHERE {scope} GROUP BY 1, 2", args)
            for row in cur.fetchall():
                stats[row["feed"]]["by_status"][row["status"]] = row["n"]
            cur.execute(
                "SELECT f.feed, count(*) AS api_calls,"
                " count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299) AS api_ok,"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY a.latency_ms) AS api_p50_ms,"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY a.latency_ms) AS api_p95_ms,"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY a.latency_ms) AS api_p99_ms"
                f" FROM file f JOIN api_call a ON a.file_id = f.id WHERE {scope} GROUP BY f.feed",
                args,
            )
            api = {r["feed"]: r for r in cur.fetchall()}
        result = []
        for name, row in stats.items():
            calls = api.get(name) or {}
            total_calls = int(calls.get("api_calls") or 0)
            result.append({
                "feed": name,
                "files": int(row["files"]),
                "by_status": {k: int(v) for k, v in sorted(row["by_status"].items())},
                "rows_in": int(row["rows_in"]),
                "rows_valid": int(row["rows_valid"]),
                "rows_rejected": int(row["rows_rejected"]),
                "api_calls": total_calls,
                "api_ok": int(calls.get("api_ok") or 0),
                "api_success_rate": (int(calls["api_ok"]) / total_calls) if total_calls else None,
                "api_latency_ms": {p: _round(calls.get(f"api_{p}_ms")) for p in ("p50", "p95", "p99")},
                "processing_latency_s": {"p50": _round(row["processing_p50_s"]),
                                         "p95": _round(row["processing_p95_s"]),
                                         "max": _round(row["processing_max_s"])},
            })
        return result

    def top_issues(self, period: Period, *, feed: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """The quality issues with the most rows, summed over the files created in the period."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT f.feed, coalesce(i->>'column', '*') AS column, coalesce(i->>'rule', '?') AS rule,"
                " sum(CASE WHEN jsonb_typeof(i->'count') = 'number' THEN (i->>'count')::numeric ELSE 1 END)::bigint"
                "   AS rows, count(DISTINCT f.id) AS files"
                " FROM file f JOIN quality_result q ON q.file_id = f.id"
                " CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(q.issues) = 'array'"
                "   THEN q.issues ELSE '[]'::jsonb END) AS i"
                " WHERE f.created_at >= %(start)s AND f.created_at < %(end)s"
                " AND (%(feed)s::text IS NULL OR f.feed = %(feed)s) AND jsonb_typeof(i) = 'object'"
                " GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3 LIMIT %(limit)s",
                {"start": period.start, "end": period.end, "feed": feed, "limit": limit},
            )
            return cur.fetchall()

    def failures(self, period: Period | None = None, *, feed: str | None = None, limit: int = 50,
                 cursor: int | None = None, feeds: Collection[str] | None = None) -> Page:
        return self.list_files(FileFilter(feed=feed, statuses=FAILURE_STATUSES, period=period, feeds=feeds),
                               limit=limit, cursor=cursor)

    def explain(self, flt: FileFilter, *, limit: int = 50, cursor: int | None = None) -> str:
        """The plan of a file-list page, for the bench (is the index used?)."""
        where, params = _where(flt)
        page_where = where + (" AND id < %(cursor)s" if cursor is not None else "")
        with self._cursor() as cur:
            cur.execute(f"EXPLAIN SELECT {LIST_COLUMNS} FROM file WHERE {page_where} ORDER BY id DESC"
                        " LIMIT %(limit)s", {**params, "cursor": cursor, "limit": limit + 1})
            return "\n".join(r["QUERY PLAN"] for r in cur.fetchall())


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _steps(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Airflow task instances that touched the file, in order, once each (the last try wins)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in history:
        if not (event.get("dag_id") and event.get("run_id") and event.get("task_id")):
            continue
        key = (event["dag_id"], event["run_id"], event["task_id"])
        step = seen.setdefault(key, {"dag_id": key[0], "run_id": key[1], "task_id": key[2], "try_number": None,
                                     "statuses": []})
        step["try_number"] = event.get("try_number") or step["try_number"]
        step["statuses"].append(event["to_status"])
    return list(seen.values())
