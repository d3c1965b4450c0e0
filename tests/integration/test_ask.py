"""Ask on the real embedded Postgres: the marketplace aggregate loaded by the real loader and files seeded through
the real lifecycle, in a database of this test's own (exact answers, no other test's rows). Every answer of the
question set is checked against SQL written here directly over the base tables, not against Ask's own SQL."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bedrock_stub import BedrockStub, bedrock_stub
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from webapp_env import airflow_app, seed_file, token

from filegate.ask.answer import Asker, AskForbidden, AskUnavailable, ask, run
from filegate.ask.guard import Checked
from filegate.ask.readable_views import Catalog
from filegate.contracts import get_contract
from filegate.loading import load_postgres
from filegate.reporting.transactions import TransactionsTable
from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATABASE = "filegate_ask"
TODAY = date(2026, 12, 3)  # the sales questions' "today" (a Thursday)
SELLERS = [f"S{n:04d}" for n in range(1, 8)]
PRODUCTS = [f"P{n:05d}" for n in range(1, 7)]
FEEDS = ("orders", "trains", "marketplace")
STATUSES = (Status.PROCESSED, Status.FAILED, Status.QUARANTINED)
ALL_FEEDS = frozenset(FEEDS)


@pytest.fixture(scope="module")
def ask_db(local_stack) -> Iterator[tuple[str, dict[str, str]]]:
    """A status store of its own: its DSN and the env that points the api-server's `filegate_db` at it."""
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = make_conninfo(local_stack.db_url, dbname=DATABASE)
    connection = {**json.loads(local_stack.env["AIRFLOW_CONN_FILEGATE_DB"]), "schema": DATABASE}
    assert connection["host"] == conninfo_to_dict(dsn)["host"]
    StatusStore.connect(dsn)  # migrations, 0008 (views and role) included
    yield dsn, {"AIRFLOW_CONN_FILEGATE_DB": json.dumps(connection), "FILEGATE_DB_URL": dsn}


@pytest.fixture(scope="module")
def sales(ask_db, tmp_path_factory) -> TransactionsTable:
    """The marketplace feed's aggregate of random transactions from 2026-11-01 to TODAY, by the real loader."""
    rng = random.Random(15)
    groups: dict[tuple, list[tuple[int, Decimal]]] = defaultdict(list)
    for _ in range(3000):
        day = date(2026, 11, 1) + timedelta(days=rng.randrange((TODAY - date(2026, 11, 1)).days + 1))
        groups[(rng.choice(SELLERS), rng.choice(PRODUCTS), day)].append(
            (rng.randint(1, 9), Decimal(rng.randint(100, 9000)) / 100))
    keys = sorted(groups)
    table = pa.table({
        "seller_id": [k[0] for k in keys], "product_id": [k[1] for k in keys],
        "sale_date": pa.array([k[2] for k in keys], pa.date32()),
        "units": [sum(q for q, _ in groups[k]) for k in keys],
        "revenue": pa.array([sum(q * p for q, p in groups[k]) for k in keys], pa.decimal128(18, 2)),
        "transactions": [len(groups[k]) for k in keys],
        "average_price": [float(sum(p for _, p in groups[k]) / len(groups[k])) for k in keys],
    })
    path = tmp_path_factory.mktemp("ask_parquet") / "part-0.parquet"
    pq.write_table(table, path)
    contract = get_contract("marketplace")
    assert load_postgres(ask_db[0], contract, [path], sha256="a" * 64, expected_rows=len(keys)).published == len(keys)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILEGATE_DB_URL", ask_db[0])
        return TransactionsTable.of(contract)


@pytest.fixture(scope="module")
def files(ask_db) -> date:
    """Nine files per feed, statuses cycling processed/failed/quarantined; returns the day they arrived."""
    store = StatusStore.connect(ask_db[0])
    for feed in FEEDS:
        actor = Actor(dag_id=f"process_{feed}", run_id="manual__1", task_id="process_files", try_number=1)
        for n in range(9):
            seed_file(store, actor, feed=feed, raw_key=f"raw/{feed}/ask_{n}.csv", name=f"ask_{n}.csv",
                      sha256=f"{feed}{n}".ljust(64, "0"), size_bytes=100 * (n + 1), target=STATUSES[n % 3],
                      rows=(10 + n, 10 + n - n % 4), latency_ms=1.0,
                      error=None if n % 3 == 0 else f"reason {n}")
    with psycopg.connect(ask_db[0]) as conn:
        [(day,)] = conn.execute("SELECT DISTINCT coalesce(arrived_on, (created_at AT TIME ZONE 'UTC')::date) "
                                "FROM file").fetchall()
    return day


@pytest.fixture(scope="module")
def asker(ask_db, sales, files) -> Asker:
    return Asker(dsn=ask_db[0], feeds=ALL_FEEDS, sales=sales)


def direct(dsn: str, text: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute(text).fetchall()]  # type: ignore[arg-type]


SALES = "feeds.marketplace_daily_sales"
SALES_QUESTIONS = {
    "top 5 sellers by revenue last week":
        f"SELECT seller_id, sum(revenue) FROM {SALES} WHERE sale_date BETWEEN '2026-11-23' AND '2026-11-29' "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
    "units of product P00001 per day in November":
        f"SELECT sale_date, sum(units) FROM {SALES} WHERE product_id = 'P00001' AND sale_date BETWEEN '2026-11-01' "
        "AND '2026-11-30' GROUP BY 1 ORDER BY 1",
    "revenue and transactions of seller S0001 between 2026-11-01 and 2026-11-10":
        f"SELECT sum(revenue), sum(transactions) FROM {SALES} WHERE seller_id = 'S0001' "
        "AND sale_date BETWEEN '2026-11-01' AND '2026-11-10'",
    "daily revenue of S0002 and S0003 this week":
        f"SELECT sale_date, sum(revenue) FROM {SALES} WHERE seller_id IN ('S0002', 'S0003') "
        "AND sale_date BETWEEN '2026-11-30' AND '2026-12-03' GROUP BY 1 ORDER BY 1",
    "bottom 3 products by units in November":
        f"SELECT product_id, sum(units) FROM {SALES} WHERE sale_date BETWEEN '2026-11-01' AND '2026-11-30' "
        "GROUP BY 1 ORDER BY 2, 1 LIMIT 3",
    "transactions per seller today":
        f"SELECT seller_id, sum(transactions) FROM {SALES} WHERE sale_date = '2026-12-03' GROUP BY 1 "
        "ORDER BY 2 DESC, 1",
    "revenue in the last 7 days":
        f"SELECT sum(revenue) FROM {SALES} WHERE sale_date BETWEEN '2026-11-27' AND '2026-12-03'",
    "top 3 days by revenue in November":
        f"SELECT sale_date, sum(revenue) FROM {SALES} WHERE sale_date BETWEEN '2026-11-01' AND '2026-11-30' "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
    "units per seller of product P00002 since 2026-11-15":
        f"SELECT seller_id, sum(units) FROM {SALES} WHERE product_id = 'P00002' AND sale_date >= '2026-11-15' "
        "AND sale_date <= '2026-12-03' GROUP BY 1 ORDER BY 2 DESC, 1",
    "How many units did we sell yesterday?":
        f"SELECT sum(units) FROM {SALES} WHERE sale_date = '2026-12-02'",
}
FILE_QUESTIONS = {
    "files per status today":
        "SELECT status, count(*) FROM file WHERE created_at::date = '{day}' GROUP BY 1 ORDER BY 2 DESC, 1",
    "failures per feed":
        "SELECT feed, count(*) FILTER (WHERE status = 'failed') FROM file GROUP BY 1 ORDER BY 2 DESC, 1",
    "rejected rows per feed":
        "SELECT feed, sum(q.rows_rejected) FROM file f LEFT JOIN quality_result q ON q.file_id = f.id "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    "rows of the orders feed":
        "SELECT sum(q.rows_total) FROM file f JOIN quality_result q ON q.file_id = f.id WHERE feed = 'orders'",
    "quarantined files per feed":
        "SELECT feed, count(*) FROM file WHERE status = 'quarantined' GROUP BY 1 ORDER BY 2 DESC, 1",
    "files per day of the trains feed in the last 7 days":
        "SELECT created_at::date, count(*) FROM file WHERE feed = 'trains' GROUP BY 1 ORDER BY 1",
    "valid rows of feed marketplace with status processed":
        "SELECT sum(q.rows_valid) FROM file f JOIN quality_result q ON q.file_id = f.id "
        "WHERE feed = 'marketplace' AND status = 'processed'",
}


def rows_of(answer: Any) -> list[tuple]:
    return [tuple(r[c] for c in answer.columns) for r in answer.rows]


@pytest.mark.parametrize("question", SALES_QUESTIONS)
def test_sales_questions_match_direct_sql(asker, ask_db, question: str) -> None:
    answer = ask(question, asker, TODAY)
    expected = direct(ask_db[0], SALES_QUESTIONS[question])
    assert expected and rows_of(answer) == expected
    assert answer.engine == "grammar" and answer.sql.startswith("SELECT") and " LIMIT " in answer.sql


@pytest.mark.parametrize("question", FILE_QUESTIONS)
def test_file_questions_match_direct_sql(asker, ask_db, files, question: str) -> None:
    answer = ask(question, asker, files)
    assert rows_of(answer) == direct(ask_db[0], FILE_QUESTIONS[question].format(day=files))


def test_average_price_weights_each_days_mean_by_its_transactions(asker, ask_db) -> None:
    answer = ask("average price per product in November", asker, TODAY)
    weighted = dict(direct(ask_db[0], f"SELECT product_id, sum(average_price * transactions) / sum(transactions) "
                                      f"FROM {SALES} WHERE sale_date BETWEEN '2026-11-01' AND '2026-11-30' "
                                      "GROUP BY 1"))
    assert {r["product"] for r in answer.rows} == set(PRODUCTS)
    for row in answer.rows:
        assert abs(float(row["average_price"]) - weighted[row["product"]]) <= 0.005


def test_a_series_gets_a_line_chart_and_a_ranking_bars(asker) -> None:
    assert ask("units of product P00001 per day in November", asker, TODAY).chart == {
        "kind": "line", "x": "day", "y": ["units"]}
    assert ask("top 5 sellers by revenue last week", asker, TODAY).chart == {
        "kind": "bar", "x": "seller", "y": ["revenue"]}
    assert ask("revenue in November", asker, TODAY).chart is None  # one number


# -- permissions --------------------------------------------------------------------------------------------

def test_a_user_who_may_not_read_the_sales_feed_gets_no_sales_answer(asker, sales) -> None:
    limited = Asker(dsn=asker.dsn, feeds=frozenset({"orders"}), sales=sales)
    with pytest.raises(AskForbidden, match="marketplace"):
        ask("top 5 sellers by revenue last week", limited, TODAY)


def test_file_answers_cover_only_readable_feeds(asker, files) -> None:
    limited = Asker(dsn=asker.dsn, feeds=frozenset({"orders"}), sales=asker.sales)
    assert [r["feed"] for r in ask("files per feed", limited, files).rows] == ["orders"]
    nobody = Asker(dsn=asker.dsn, feeds=frozenset(), sales=asker.sales)
    assert ask("files per feed", nobody, files).rows == []


def test_the_views_filter_by_feed_even_for_sql_the_guard_did_not_shape(asker, sales) -> None:
    """Defence in depth: a query the guard accepted (as an LLM could write it) still sees only readable feeds."""
    catalog = Catalog.of(sales)
    limited = Asker(dsn=asker.dsn, feeds=frozenset({"orders"}), sales=sales)
    _, rows = run(Checked("SELECT DISTINCT feed FROM ask.files LIMIT 10", ("files",)), catalog, limited)
    assert rows == [{"feed": "orders"}]
    _, rows = run(Checked("SELECT count(*) AS n FROM ask.sales LIMIT 1", ("sales",)), catalog, limited)
    assert rows == [{"n": 0}]


# permission denied, or (ask.files joins two tables) "cannot update view": either way nothing is written
REFUSED_BY_POSTGRES = (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)


def test_the_role_cannot_write_or_read_tables_even_without_the_guard(ask_db, asker) -> None:
    """The guard bypassed, and not even in a read-only transaction: the role itself is refused."""
    ask("revenue today", asker, TODAY)  # ask.sales exists from the first sales question on
    statements = [
        "INSERT INTO file (feed, source, name, raw_key, status) VALUES ('x', 's3', 'x', 'x', 'pending')",
        "UPDATE ask.files SET status = 'processed'",
        "DELETE FROM ask.sales",
        f"DELETE FROM {SALES}",
        "SELECT * FROM file",
        f"SELECT * FROM {SALES}",
        "SELECT * FROM quality_result",
        "CREATE TABLE ask.stolen (x int)",
        "CREATE TABLE public.stolen (x int)",
        "DROP VIEW ask.files",
        "CREATE OR REPLACE VIEW ask.files AS SELECT 1 AS id",
        "ALTER ROLE filegate_ask SUPERUSER",
        # Not here: `SET ROLE <the connection's user>`, which Postgres allows back; so the guard refuses SET and
        # set_config() (tests/unit/test_ask_guard.py), and no SELECT can switch roles without them.
    ]
    with psycopg.connect(ask_db[0], autocommit=True) as conn:
        for statement in statements:
            with pytest.raises(REFUSED_BY_POSTGRES), conn.transaction():
                conn.execute("SET LOCAL ROLE filegate_ask")
                conn.execute(statement)  # type: ignore[arg-type]
        [(count,)] = conn.execute("SELECT count(*) FROM file").fetchall()
        assert count == 3 * 9


def test_a_status_store_user_who_may_not_grant_the_role_still_migrates_and_ask_says_why(local_stack) -> None:
    """RDS-like: the store's user is no superuser and the server's filegate_ask role is not its to grant."""
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS filegate_ask_plain")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'fg_ask_plain'").fetchall():
            conn.execute("CREATE ROLE fg_ask_plain LOGIN PASSWORD 'plain-pw'")
        conn.execute("CREATE DATABASE filegate_ask_plain OWNER fg_ask_plain")
    dsn = make_conninfo(local_stack.db_url, dbname="filegate_ask_plain", user="fg_ask_plain", password="plain-pw")
    StatusStore.connect(dsn)  # warns, does not fail: the rest of Filegate works without Ask
    with pytest.raises(AskUnavailable, match="GRANT filegate_ask TO"):
        ask("files per feed", Asker(dsn=dsn, feeds=ALL_FEEDS), TODAY)


def test_a_slow_query_hits_the_statement_timeout(asker, sales) -> None:
    quick = Asker(dsn=asker.dsn, feeds=ALL_FEEDS, sales=sales, timeout_ms=200)
    cross = Checked("SELECT count(*) AS n FROM ask.sales AS a, ask.sales AS b, ask.sales AS c LIMIT 1", ("sales",))
    with pytest.raises(psycopg.errors.QueryCanceled):
        run(cross, Catalog.of(sales), quick)


# -- over HTTP, with the LLM engine behind a local Bedrock runtime endpoint ---------------------------------

@pytest.fixture(scope="module")
def llm() -> Iterator[BedrockStub]:
    with bedrock_stub() as stub:
        yield stub


@pytest.fixture(scope="module")
def client(local_stack, ask_db, sales, files, llm, tmp_path_factory) -> Iterator[TestClient]:
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"region_name": "us-east-1", "endpoint_url": llm.url, "model_id": "test.sql-writer"}}
    home = tmp_path_factory.mktemp("airflow_ask")
    with airflow_app(local_stack.env, home, **ask_db[1], FILEGATE_ASK_LLM_CONN_ID="ask_llm",
                     AIRFLOW_CONN_ASK_LLM=json.dumps(connection)) as app:
        test_client = TestClient(app)
        test_client.headers["Authorization"] = f"Bearer {token(test_client, 'admin')}"
        yield test_client


def post(client: TestClient, question: str, today: date = TODAY) -> Any:
    return client.post("/filegate/api/ask", json={"question": question, "today": today.isoformat()})


def test_the_endpoint_answers_with_the_sql_the_rows_and_a_chart(client, ask_db) -> None:
    response = post(client, "top 5 sellers by revenue last week")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "grammar" and body["columns"] == ["seller", "revenue"]
    assert body["sql"].startswith("SELECT seller, SUM(revenue) AS revenue FROM ask.sales")
    expected = direct(ask_db[0], SALES_QUESTIONS["top 5 sellers by revenue last week"])
    assert [(r["seller"], Decimal(r["revenue"])) for r in body["rows"]] == expected  # exact decimals as strings
    assert body["chart"] == {"kind": "bar", "x": "seller", "y": ["revenue"]}
    assert client.post("/filegate/api/ask", json={"question": "files"}, headers={"Authorization": ""}
                       ).status_code == 401


def test_the_llm_writes_sql_for_what_the_grammar_does_not_understand(client, llm, files) -> None:
    llm.reply = "Here it is:\n```sql\nSELECT feed, max(size_bytes) AS largest FROM ask.files GROUP BY feed " \
                "ORDER BY feed\n```"
    response = post(client, "what is the largest file of each feed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "llm" and body["sql"].endswith("LIMIT 500")
    assert body["rows"] == [{"feed": feed, "largest": 900} for feed in sorted(FEEDS)]
    request = llm.requests[-1]
    assert request["model"] == "test.sql-writer" and request["signed"]
    prompt = request["body"]["system"][0]["text"]
    assert "ask.files" in prompt and "ask.sales" in prompt and "rows_rejected" in prompt
    assert request["body"]["messages"] == [{"role": "user", "content": [{"text": "what is the largest file of "
                                                                                 "each feed"}]}]


@pytest.mark.parametrize("hostile", [
    "```sql\nDELETE FROM file\n```",
    "SELECT * FROM ask.files; DROP TABLE file",
    "SELECT pg_sleep(30) FROM ask.files",
    "SELECT set_config('filegate.ask_feeds', 'x', false) FROM ask.files",
    "WITH gone AS (DELETE FROM file RETURNING id) SELECT id FROM gone",
    "SELECT * FROM public.file",
])
def test_hostile_sql_from_the_llm_is_refused(client, llm, ask_db, hostile: str) -> None:
    llm.reply = hostile
    response = post(client, "please show me everything you have")
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("refused:")
    assert direct(ask_db[0], "SELECT count(*) FROM file") == [(3 * 9,)]


def test_an_llm_that_cannot_answer_says_so(client, llm) -> None:
    llm.reply = "CANNOT ANSWER"
    response = post(client, "who will win the league")
    assert response.status_code == 422 and "could not answer" in response.json()["detail"]
