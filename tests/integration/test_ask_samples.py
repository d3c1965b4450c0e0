"""The README's Ask examples are real answers: the marketplace and orders sample files through the real engine,
loader and lifecycle into a status store of this test's own, then asked with "today" 2026-11-21."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from filegate.ask.answer import Asker, ask
from filegate.contracts import get_contract
from filegate.loading import load_postgres
from filegate.pipeline.engine import run_engine
from filegate.reporting.transactions import TransactionsTable
from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATABASE = "filegate_ask_samples"
TODAY = date(2026, 11, 21)
SAMPLES = {"orders": ["orders_2026-11-20.csv", "orders_wrong_columns.csv"],
           "marketplace": ["marketplace_2026-11-20.csv.gz", "marketplace_2026-11-21_bad_prices.csv"]}


@pytest.fixture(scope="module")
def asker(local_stack, tmp_path_factory, monkeypatch_module) -> Asker:
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = make_conninfo(local_stack.db_url, dbname=DATABASE)
    monkeypatch_module.setenv("FILEGATE_DB_URL", dsn)
    store = StatusStore.connect(dsn)
    for feed, names in SAMPLES.items():
        contract = get_contract(feed)
        actor = Actor(dag_id=f"process_{feed}", run_id="manual__samples", task_id="process_files", try_number=1)
        for name in names:
            path = ROOT / "include" / "samples" / feed / name
            data = path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            dated = re.search(r"\d{4}-\d{2}-\d{2}", name)
            arrived = date.fromisoformat(dated[0]) if dated else date(2026, 11, 20)
            reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/{name}", name=name, sha256=sha256,
                                 size_bytes=len(data), actor=actor, arrived_on=arrived)
            store.queue([reg.file_id], actor)
            store.claim(actor, feed=feed, file_ids=[reg.file_id])
            result = run_engine(contract, path, arrived=arrived, work_dir=tmp_path_factory.mktemp("engine"))
            store.record_quality(reg.file_id, rows_total=result.rows_total, rows_valid=result.rows_valid,
                                 rows_rejected=result.rows_rejected, inferred_schema={}, column_stats={}, issues=[])
            if result.status == "processed" and contract.destinations.postgres:
                load_postgres(dsn, contract, list(result.parquet_files.values()), sha256=sha256,
                              expected_rows=result.rows_output)
            store.transition(reg.file_id, Status(result.status), actor, error=result.reason)
    return Asker(dsn=dsn, feeds=frozenset(SAMPLES), sales=TransactionsTable.of(get_contract("marketplace")))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def answer(asker: Asker, question: str) -> list[tuple]:
    found = ask(question, asker, TODAY)
    return [tuple(str(r[c]) for c in found.columns) for r in found.rows]


# The README's section "Ask: questions in plain language" shows these answers: change both together.
README_EXAMPLES = {
    "top 5 sellers by revenue yesterday": [("S0001", "18133.35"), ("S0007", "17540.49"), ("S0008", "16581.24"),
                                           ("S0006", "16141.94"), ("S0004", "15726.22")],
    "units of product P00001 per day in November": [("2026-11-20", "105"), ("2026-11-21", "80")],
    "revenue and transactions of seller S0001 in November": [("31833.81", "248")],
    "top 3 products by units in November": [("P00013", "217"), ("P00018", "213"), ("P00027", "210")],
    "rejected rows per feed": [("marketplace", "50"), ("orders", "3")],
}


@pytest.mark.parametrize("question", README_EXAMPLES)
def test_the_readme_examples_answer_as_documented(asker, question: str) -> None:
    assert answer(asker, question) == README_EXAMPLES[question]


def test_the_readme_shows_them() -> None:
    readme = (ROOT / "README.md").read_text()
    for question in README_EXAMPLES:
        assert f"*{question}*" in " ".join(readme.split()), question
