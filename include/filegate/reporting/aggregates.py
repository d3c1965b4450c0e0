"""A feed's published output rows, e.g. marketplace totals per seller, product and day, for the UI and API.

Where they come from, in order: a Postgres table in schema `feeds` named after the feed (`feeds.<feed>` or
`feeds.<feed>_…`, preferring one with `agg` in its name), else the feed's Parquet output under
`processed/<feed>/` in S3, newest objects first. When neither exists the answer says so instead of failing.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

log = logging.getLogger(__name__)
MAX_PARQUET_OBJECTS = 50
MAX_PARQUET_OBJECT_BYTES = 64 << 20
FEEDS_SCHEMA = "feeds"


@dataclass(frozen=True)
class Aggregates:
    available: bool
    source: str | None = None
    location: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    reason: str | None = None


def _like_prefix(feed: str) -> str:
    return feed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "\\_%"


def from_postgres(dsn: str, feed: str, *, filters: dict[str, str], limit: int, offset: int) -> Aggregates | None:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
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


def from_parquet(s3: Any, bucket: str, feed: str, *, filters: dict[str, str], limit: int,
                 offset: int) -> Aggregates | None:
    import pyarrow.parquet as pq

    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"processed/{feed}/"):
        objects += [o for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    if not objects:
        return None
    objects.sort(key=lambda o: (o["LastModified"], o["Key"]), reverse=True)
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    wanted = offset + limit
    matched = 0
    for obj in objects[:MAX_PARQUET_OBJECTS]:
        if obj["Size"] > MAX_PARQUET_OBJECT_BYTES:
            log.warning("skipping %s: %d bytes is too large to show", obj["Key"], obj["Size"])
            continue
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
        columns = columns or table.column_names
        unknown = sorted(set(filters) - set(table.column_names))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; the output has {', '.join(table.column_names)}")
        for row in table.to_pylist():
            if all(str(row.get(c)) == v for c, v in filters.items()):
                if offset <= matched < wanted:
                    rows.append(row)
                matched += 1
    return Aggregates(True, "s3", f"s3://{bucket}/processed/{feed}/", columns, rows, matched)


def feed_aggregates(dsn: str, s3: Any, bucket: str, feed: str, *, filters: dict[str, str] | None = None,
                    limit: int = 100, offset: int = 0) -> Aggregates:
    filters = filters or {}
    try:
        found = from_postgres(dsn, feed, filters=filters, limit=limit, offset=offset)
    except psycopg.Error as exc:  # the table is optional; an unreachable one must not break the page
        log.warning("feeds table of %s not readable: %s", feed, exc)
        found = None
    if found is None:
        found = from_parquet(s3, bucket, feed, filters=filters, limit=limit, offset=offset)
    return found or Aggregates(
        False, reason=f"feed {feed!r} has no published output yet: no table {FEEDS_SCHEMA}.{feed}… in Postgres and "
                      f"no Parquet under s3://{bucket}/processed/{feed}/")
