"""A feed's published output rows, e.g. marketplace totals per seller, product and day, for the UI and API.

Where they come from, in order: a Postgres table in schema `feeds` named after the feed (`feeds.<feed>` or
`feeds.<feed>_…`, preferring one with `agg` in its name), else the feed's Parquet output under
`processed/<feed>/` in S3, newest objects first. When neither exists the answer says so instead of failing.

The Parquet fallback reads at most MAX_PARQUET_BYTES (all objects together) and MAX_PARQUET_OBJECTS per request:
past that the answer is flagged `truncated`, and when not even the newest object fits, OutputTooLarge is raised
(the API answers 413) rather than reading it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from filegate.storage import keys
from filegate.storage.database import connect

log = logging.getLogger(__name__)
MAX_PARQUET_OBJECTS = 50
# Parquet read per request by the fallback, all objects together (any signed-in user may ask).
MAX_PARQUET_BYTES = 32 << 20
FEEDS_SCHEMA = "feeds"


class OutputTooLarge(Exception):
    """Not even the newest Parquet object fits the per-request budget: nothing was read."""


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
    reason. Objects are read one at a time and scanned batch by batch, so memory stays near one object."""
    import pyarrow.parquet as pq

    budget = MAX_PARQUET_BYTES if max_bytes is None else max_bytes
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.processed_prefix(feed)):
        objects += [o for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    if not objects:
        return None
    objects.sort(key=lambda o: (o["LastModified"], o["Key"]), reverse=True)
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    wanted = offset + limit
    matched = 0
    spent = 0
    read = 0
    for obj in objects[:MAX_PARQUET_OBJECTS]:
        size = int(obj["Size"])
        if spent + size > budget:
            break
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(budget - spent + 1)
        if len(body) > budget - spent:  # grew since it was listed
            break
        spent += len(body)
        read += 1
        parquet = pq.ParquetFile(io.BytesIO(body))
        names = parquet.schema_arrow.names
        columns = columns or names
        unknown = sorted(set(filters) - set(names))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; the output has {', '.join(names)}")
        for batch in parquet.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                if all(str(row.get(c)) == v for c, v in filters.items()):
                    if offset <= matched < wanted:
                        rows.append(row)
                    matched += 1
    if read == 0:
        raise OutputTooLarge(
            f"the newest Parquet object of {feed} ({objects[0]['Key'].rsplit('/', 1)[-1]}, "
            f"{_mb(int(objects[0]['Size']))}) is larger than the {_mb(budget)} this view reads per request; "
            f"a Postgres table {FEEDS_SCHEMA}.{feed}… (destinations.postgres) serves outputs of any size")
    truncated = read < len(objects)
    reason = None
    if truncated:
        left = len(objects) - read
        reason = (f"partial: read the newest {read} of {len(objects)} Parquet objects ({_mb(spent)}); {left} "
                  f"more were not read, the limit per request being {_mb(budget)} of Parquet and "
                  f"{MAX_PARQUET_OBJECTS} objects. total counts only the rows read. A Postgres table "
                  f"{FEEDS_SCHEMA}.{feed}… (destinations.postgres) answers over every row")
    return Aggregates(True, "s3", f"s3://{bucket}/processed/{feed}/", columns, rows, matched, reason, truncated)


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
