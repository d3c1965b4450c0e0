"""A feed's published output rows, e.g. marketplace totals per seller, product and day, for the UI and API.

Where they come from, in order: a Postgres table in schema `feeds` named after the feed (`feeds.<feed>` or
`feeds.<feed>_…`, preferring one with `agg` in its name), else the feed's Parquet output under
`processed/<feed>/` in S3, newest objects first. When neither exists the answer says so instead of failing.

The Parquet fallback reads at most MAX_PARQUET_BYTES (all objects together) and MAX_PARQUET_OBJECTS per request:
past that the answer is flagged `truncated`, and when not even the newest object fits, OutputTooLarge is raised
(the API answers 413) rather than reading it.

No Arrow in this process (it may be the Airflow api-server): the objects are fetched here, then decoded by
`python -m filegate.reporting.parquet_scan` in a child bounded in time, memory and number (reporting/isolated.py).
A child that crashes, runs out of time or memory is one failed request (WorkerCrashed, WorkerTimedOut,
WorkerOutOfMemory), never a dead api-server. Answers are cached per listing: the same objects, the same question,
no second child.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from filegate.reporting.isolated import IsolatedRunner, WorkerOutOfMemory
from filegate.storage import keys
from filegate.storage.database import connect

log = logging.getLogger(__name__)
MAX_PARQUET_OBJECTS = 50
# Parquet read per request by the fallback, all objects together (any signed-in user may ask).
MAX_PARQUET_BYTES = 32 << 20
FEEDS_SCHEMA = "feeds"
SCAN_MODULE = "filegate.reporting.parquet_scan"
# The child reading the Parquet: wall-clock limit, address-space limit (its interpreter and Arrow take about
# 370 MB of it before reading anything), and how many may run at once per api-server process.
READER_TIMEOUT_S = float(os.environ.get("FILEGATE_AGGREGATES_TIMEOUT_S") or 30)
READER_MAX_BYTES = int(os.environ.get("FILEGATE_AGGREGATES_MAX_MEMORY_MB") or 1024) << 20
READER_COMMAND: list[str] | None = None  # tests replace the child's command line (a crashing one)
CACHE_ENTRIES = 32
_runner = IsolatedRunner(max_workers=int(os.environ.get("FILEGATE_AGGREGATES_WORKERS") or 2))
_cache: OrderedDict[str, Aggregates] = OrderedDict()
_cache_lock = threading.Lock()


class OutputTooLarge(Exception):
    """Not even the newest Parquet object fits the per-request budget: nothing was read."""


class ReaderOutOfMemory(OutputTooLarge):
    """The objects fit the byte budget, but decoding them needed more memory than the reader may use."""


@dataclass(frozen=True)
class Aggregates:
    available: bool
    source: str | None = None
    location: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    reason: str | None = None  # why nothing, or only part, is shown
    truncated: bool = False  # the byte or object limit left part of the output unread


def _like_prefix(feed: str) -> str:
    return feed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "\\_%"


def from_postgres(dsn: str, feed: str, *, filters: dict[str, str], limit: int, offset: int) -> Aggregates | None:
    with connect(dsn, source="FILEGATE_DB_URL", row_factory=dict_row) as conn:
        conn.read_only = True
        tables = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND (table_name = %s OR table_name LIKE %s) ORDER BY (table_name LIKE '%%agg%%') DESC, table_name",
            (FEEDS_SCHEMA, feed, _like_prefix(feed))).fetchall()]
        if not tables:
            return None
        table = tables[0]
        columns = [r["column_name"] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY ordinal_position", (FEEDS_SCHEMA, table)).fetchall()]
        unknown = sorted(set(filters) - set(columns))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; feeds.{table} has {', '.join(columns)}")
        where = sql.SQL(" AND ").join(
            sql.SQL("{}::text = {}").format(sql.Identifier(c), sql.Literal(v)) for c, v in filters.items()
        ) if filters else sql.SQL("TRUE")
        ident = sql.Identifier(FEEDS_SCHEMA, table)
        total = conn.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(ident, where)).fetchone()
        rows = conn.execute(sql.SQL("SELECT * FROM {} WHERE {} ORDER BY 1, 2 LIMIT {} OFFSET {}").format(
            ident, where, sql.Literal(limit), sql.Literal(offset))).fetchall()
    return Aggregates(True, "postgres", f"{FEEDS_SCHEMA}.{table}", columns, rows, int(total["n"]) if total else 0)


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def from_parquet(s3: Any, bucket: str, feed: str, *, filters: dict[str, str], limit: int, offset: int,
                 max_bytes: int | None = None) -> Aggregates | None:
    """The newest Parquet objects under processed/<feed>/, read until `max_bytes` (of objects, per request) is
    spent: an object that would overrun the budget is not read, and the answer is flagged `truncated` with the
    reason. Objects are fetched one at a time to a temporary folder, then decoded in a bounded child process."""
    budget = MAX_PARQUET_BYTES if max_bytes is None else max_bytes
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.processed_prefix(feed)):
        objects += [o for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    if not objects:
        return None
    objects.sort(key=lambda o: (o["LastModified"], o["Key"]), reverse=True)
    cache_key = _cache_key(bucket, feed, objects, filters=sorted(filters.items()), limit=limit, offset=offset,
                           budget=budget)
    with _cache_lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    spent = 0
    with tempfile.TemporaryDirectory(prefix="filegate-aggregates-") as folder:
        paths: list[str] = []
        for obj in objects[:MAX_PARQUET_OBJECTS]:
            size = int(obj["Size"])
            if spent + size > budget:
                break
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(budget - spent + 1)
            if len(body) > budget - spent:  # grew since it was listed
                break
            spent += len(body)
            path = Path(folder) / f"{len(paths):03d}.parquet"
            path.write_bytes(body)
            del body
            paths.append(str(path))
        if not paths:
            raise OutputTooLarge(
                f"the newest Parquet object of {feed} ({objects[0]['Key'].rsplit('/', 1)[-1]}, "
                f"{_mb(int(objects[0]['Size']))}) is larger than the {_mb(budget)} this view reads per request; "
                f"a Postgres table {FEEDS_SCHEMA}.{feed}… (destinations.postgres) serves outputs of any size")
        try:
            scanned = _runner.run(SCAN_MODULE, {"paths": paths, "filters": filters, "limit": limit,
                                                "offset": offset},
                                  timeout_s=READER_TIMEOUT_S, max_bytes=READER_MAX_BYTES, command=READER_COMMAND)
        except WorkerOutOfMemory as exc:
            raise ReaderOutOfMemory(
                f"{exc}; the newest {len(paths)} Parquet object(s) of {feed} ({_mb(spent)}) decode to more than "
                f"this view may hold. A Postgres table {FEEDS_SCHEMA}.{feed}… (destinations.postgres) serves "
                f"outputs of any size") from exc
    read = len(paths)
    truncated = read < len(objects)
    reason = None
    if truncated:
        left = len(objects) - read
        reason = (f"partial: read the newest {read} of {len(objects)} Parquet objects ({_mb(spent)}); {left} "
                  f"more were not read, the limit per request being {_mb(budget)} of Parquet and "
                  f"{MAX_PARQUET_OBJECTS} objects. total counts only the rows read. A Postgres table "
                  f"{FEEDS_SCHEMA}.{feed}… (destinations.postgres) answers over every row")
    found = Aggregates(True, "s3", f"s3://{bucket}/processed/{feed}/", scanned["columns"], scanned["rows"],
                       scanned["matched"], reason, truncated)
    with _cache_lock:
        _cache[cache_key] = found
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return found


def _cache_key(bucket: str, feed: str, objects: list[dict[str, Any]], **question: Any) -> str:
    """Changes whenever an object is added, replaced or removed, or the question differs."""
    digest = hashlib.sha256(repr((bucket, feed, MAX_PARQUET_OBJECTS, sorted(question.items(), key=str))).encode())
    for obj in objects:
        digest.update(repr((obj["Key"], obj["Size"], str(obj["LastModified"]), obj.get("ETag"))).encode())
    return digest.hexdigest()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def feed_aggregates(dsn: str, s3: Any, bucket: str, feed: str, *, filters: dict[str, str] | None = None,
                    limit: int = 100, offset: int = 0, max_bytes: int | None = None) -> Aggregates:
    filters = filters or {}
    try:
        found = from_postgres(dsn, feed, filters=filters, limit=limit, offset=offset)
    except psycopg.Error as exc:  # the table is optional; an unreachable one must not break the page
        log.warning("feeds table of %s not readable: %s", feed, exc)
        found = None
    if found is None:
        found = from_parquet(s3, bucket, feed, filters=filters, limit=limit, offset=offset, max_bytes=max_bytes)
    return found or Aggregates(
        False, reason=f"feed {feed!r} has no published output yet: no table {FEEDS_SCHEMA}.{feed}… in Postgres and "
                      f"no Parquet under s3://{bucket}/processed/{feed}/")
