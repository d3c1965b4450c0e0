"""Loads a file's valid rows into a Postgres table, Write-Audit-Publish style, the rows in ONE transaction:

0. the target table is created (or given new output columns) in a short transaction of its own;
1. write: COPY the rows (from the engine's Parquet) into a temporary staging table;
2. audit: the staged row count matches the engine's, no natural-key column is empty, no natural key repeats;
3. publish: INSERT … ON CONFLICT (natural key) DO UPDATE into `<schema>.<table>`, then COMMIT.

A failed audit rolls everything back: the target table never holds part of a file. Re-running a file is
idempotent (the UPSERT replaces its rows). The table is created on first load from the output's Arrow schema,
with the natural key as primary key; new output columns are added as nullable columns.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from filegate.contracts.model import Contract, PostgresDestination
from filegate.contracts.targets import dsn_source
from filegate.storage.database import connect

log = logging.getLogger(__name__)
META_COLUMNS = {"_file_sha256": "text", "_loaded_at": "timestamptz"}


class LoadError(RuntimeError):
    """The audit failed: nothing was published. The message says which check and which keys."""


@dataclass(frozen=True)
class LoadReport:
    table: str
    staged: int
    published: int


def postgres_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "bigint"
    if pa.types.is_floating(kind):
        return "double precision"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision},{kind.scale})"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    return "text"


def _ensure_table(cur: psycopg.Cursor, dest: PostgresDestination, schema: pa.Schema) -> None:
    # `CREATE … IF NOT EXISTS` is not safe against itself: two transactions creating the same schema or table at
    # once fail with a UniqueViolation (pg_namespace, pg_type). First loads of a feed do run at once (its
    # event-driven run, a backfill, the file workers of one task), so the DDL of one schema takes turns; the lock
    # ends with this short transaction, before any rows are loaded.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"filegate.loading.ddl:{dest.db_schema}",))
    target = sql.Identifier(dest.db_schema, dest.table)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(dest.db_schema)))
    columns = [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(postgres_type(f.type))) for f in schema]
    columns += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in META_COLUMNS.items()]
    key = sql.SQL(", ").join(sql.Identifier(k) for k in dest.natural_key)
    cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        target, sql.SQL(", ").join(columns), key))
    for f in schema:  # later contract versions may add output columns
        cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            target, sql.Identifier(f.name), sql.SQL(postgres_type(f.type))))


def _copy(cur: psycopg.Cursor, stage: sql.Identifier, columns: list[str], batches: Iterable[pa.RecordBatch]) -> int:
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    rows = 0
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, names)) as copy:
        for batch in batches:
            buffer = io.BytesIO()
            # pyarrow quotes every string, so an empty string stays '' while a null is an unquoted empty field.
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getvalue())
            rows += batch.num_rows
    return rows


def load_postgres(dsn: str, contract: Contract, parquet_files: Iterable[Path], *, sha256: str,
                  expected_rows: int) -> LoadReport:
    dest = contract.destinations.postgres
    if dest is None:
        raise ValueError(f"feed {contract.name} has no postgres destination")
    files = sorted(parquet_files)
    if not files:
        return LoadReport(f"{dest.db_schema}.{dest.table}", 0, 0)
    schema = pq.read_schema(files[0])
    columns = schema.names
    target = sql.Identifier(dest.db_schema, dest.table)
    stage = sql.Identifier(f"stage_{dest.table}")
    with connect(dsn, source=dsn_source(dest)) as conn, conn.cursor() as cur:
        _ensure_table(cur, dest, schema)
        conn.commit()  # the DDL on its own: an empty table or a new nullable column publishes nothing
        # CREATE TABLE AS copies no constraints: an empty key must reach the audit, not fail the COPY.
        cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {} WITH NO DATA").format(
            stage, target))
        staged = _copy(cur, stage, columns,
                       (batch for path in files for batch in pq.ParquetFile(path).iter_batches(65_536)))
        _audit(cur, dest, stage, staged, expected_rows)
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in [*columns, *META_COLUMNS]
            if c not in dest.natural_key)
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        cur.execute(sql.SQL("INSERT INTO {target} ({names}, _file_sha256, _loaded_at) "
                            "SELECT {names}, %s, now() FROM {stage} "
                            "ON CONFLICT ({key}) DO UPDATE SET {updates}").format(
            target=target, names=names, stage=stage, updates=updates,
            key=sql.SQL(", ").join(sql.Identifier(k) for k in dest.natural_key)), (sha256,))
        published = cur.rowcount
        conn.commit()
    log.info("%s.%s: %d rows staged, %d upserted", dest.db_schema, dest.table, staged, published)
    return LoadReport(f"{dest.db_schema}.{dest.table}", staged, published)


def _audit(cur: psycopg.Cursor, dest: PostgresDestination, stage: sql.Identifier, staged: int,
           expected_rows: int) -> None:
    if staged != expected_rows:
        raise LoadError(f"staged {staged} rows, the engine wrote {expected_rows}")
    key = sql.SQL(", ").join(sql.Identifier(k) for k in dest.natural_key)
    empty = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in dest.natural_key)
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(stage, empty))
    row = cur.fetchone()
    if row and row[0]:
        raise LoadError(f"{row[0]} staged row(s) have an empty natural key ({', '.join(dest.natural_key)})")
    cur.execute(sql.SQL("SELECT {key}, count(*) FROM {stage} GROUP BY {key} HAVING count(*) > 1 LIMIT 5").format(
        key=key, stage=stage))
    repeats = cur.fetchall()
    if repeats:
        shown = "; ".join(", ".join(str(v) for v in r[:-1]) + f" (x{r[-1]})" for r in repeats)
        raise LoadError(f"the natural key ({', '.join(dest.natural_key)}) repeats within the file: {shown}")
