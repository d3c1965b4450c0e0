"""Loads into a Postgres destination whose schema and table do not exist yet, all at once: several tasks (the
event-driven run, a backfill, the file workers of one task) load the first files of a feed at the same moment.
Found by the chaos run: `CREATE SCHEMA IF NOT EXISTS` in concurrent transactions failed with a UniqueViolation
on pg_namespace, and the files failed."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filegate.contracts.model import Contract
from filegate.loading.postgres import load_postgres

pytestmark = pytest.mark.integration
LOADERS = 8


def contract(schema: str) -> Contract:
    return Contract.model_validate({
        "name": "race", "description": "concurrent first loads",
        "schema": {"columns": [{"name": "id", "type": "int", "nullable": False}]},
        "destinations": {"postgres": {"table": "race_rows", "schema": schema, "natural_key": ["id"]}},
    })


def test_first_loads_into_a_new_table_all_succeed_at_once(local_stack, tmp_path: Path) -> None:
    schema = f"race_{uuid.uuid4().hex[:10]}"
    feed = contract(schema)
    files = []
    for n in range(LOADERS):
        path = tmp_path / f"part-{n}.parquet"
        pq.write_table(pa.table({"id": pa.array([n * 10 + i for i in range(10)], pa.int64()),
                                 "label": pa.array([f"r{n}"] * 10)}), path)
        files.append(path)
    start = threading.Barrier(LOADERS)
    errors: list[BaseException] = []

    def load(path: Path) -> None:
        start.wait()
        try:
            load_postgres(local_stack.db_url, feed, [path], sha256=path.stem, expected_rows=10)
        except BaseException as exc:  # collected: the assertion shows every failure
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with psycopg.connect(local_stack.db_url) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{schema}".race_rows').fetchone() == (LOADERS * 10,)
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
