"""The Ask guard: whoever wrote the SQL (the grammar, an LLM, an attacker), only one SELECT over the Ask views
with a LIMIT passes, and what runs is the guard's own rendering of what it checked."""

from __future__ import annotations

import pytest

from filegate.ask.guard import MAX_ROWS, Refused, check
from filegate.ask.readable_views import Catalog, View

SALES = View("sales", "sales", {c: c for c in ("day", "seller", "product", "units", "revenue", "transactions",
                                                "average_price")}, "marketplace")
CATALOG = Catalog.of(None)
WITH_SALES = Catalog((CATALOG.views[0], SALES))

INJECTIONS = {
    "ddl": "DROP TABLE file",
    "ddl create": "CREATE TABLE ask.x AS SELECT * FROM ask.files",
    "alter role": "ALTER ROLE filegate_ask SUPERUSER",
    "dml insert": "INSERT INTO file (feed) VALUES ('x')",
    "dml update": "UPDATE ask.files SET status = 'processed'",
    "dml delete": "DELETE FROM ask.files",
    "truncate": "TRUNCATE file",
    "two statements": "SELECT * FROM ask.files; DROP TABLE file",
    "statement after a comment": "SELECT * FROM ask.files /* harmless */; DELETE FROM file -- bye",
    "comment hiding nothing but a second statement": "SELECT 1 FROM ask.files -- x\n; UPDATE file SET status='x'",
    "pg_sleep": "SELECT pg_sleep(60) FROM ask.files",
    "pg_sleep in where": "SELECT id FROM ask.files WHERE pg_sleep(1) IS NULL",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd') FROM ask.files",
    "set_config": "SELECT set_config('filegate.ask_feeds', 'orders,trains', true) FROM ask.files",
    "current_setting": "SELECT current_setting('filegate.ask_feeds') FROM ask.files",
    "dblink": "SELECT * FROM dblink('dbname=postgres', 'DROP TABLE file') AS t(x int)",
    "lo_import": "SELECT lo_import('/etc/passwd') FROM ask.files",
    "query_to_xml": "SELECT query_to_xml('DELETE FROM file RETURNING 1', true, true, '') FROM ask.files",
    "generate_series": "SELECT count(*) FROM ask.files, generate_series(1, 100000000)",
    "nextval": "SELECT nextval('file_id_seq') FROM ask.files",
    "other schema": "SELECT * FROM public.file",
    "bare table": "SELECT * FROM file",
    "catalog": "SELECT rolname FROM pg_catalog.pg_roles",
    "information schema": "SELECT * FROM information_schema.tables",
    "feeds schema": "SELECT * FROM feeds.marketplace_daily_sales",
    "three-part name": "SELECT * FROM otherdb.ask.files",
    "subquery on a table": "SELECT * FROM ask.files WHERE id IN (SELECT id FROM file)",
    "cte with delete": "WITH gone AS (DELETE FROM file RETURNING *) SELECT * FROM gone",
    "cte with update": "WITH x AS (UPDATE ask.files SET status = 'x' RETURNING id) SELECT id FROM x",
    "select into": "SELECT * INTO stolen FROM ask.files",
    "for update": "SELECT * FROM ask.files FOR UPDATE",
    "for share": "SELECT * FROM ask.files FOR SHARE",
    "set": "SET ROLE postgres",
    "copy": "COPY file TO STDOUT",
    "copy to program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "transaction": "COMMIT",
    "no view": "SELECT 1",
    "system column": "SELECT xmin FROM ask.files",
    "unknown column": "SELECT password FROM ask.files",
    "limit as a subquery": "SELECT * FROM ask.files LIMIT (SELECT 1000000)",
    "sales not allowed": "SELECT * FROM ask.sales",
    "explain": "EXPLAIN ANALYZE SELECT * FROM ask.files",
    "do block": "DO $$ BEGIN DELETE FROM file; END $$",
    "call": "CALL something()",
    "garbage": "SELEC * FROM",
    "empty": "",
    "only a comment": "-- nothing",
}


@pytest.mark.parametrize("text", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_the_guard_refuses(text: str) -> None:
    with pytest.raises(Refused):
        check(text, CATALOG)


def test_a_read_of_the_views_passes_with_a_limit_added() -> None:
    checked = check("select status, count(*) as n from files group by status", CATALOG)
    assert checked.sql == f"SELECT status, COUNT(*) AS n FROM ask.files GROUP BY status LIMIT {MAX_ROWS}"
    assert checked.views == ("files",)


def test_a_limit_above_the_maximum_is_clamped_and_one_below_kept() -> None:
    assert check("SELECT * FROM ask.files LIMIT 100000", CATALOG).sql.endswith(f"LIMIT {MAX_ROWS}")
    assert check("SELECT * FROM ask.files LIMIT 3", CATALOG).sql.endswith("LIMIT 3")


def test_comments_never_reach_the_database() -> None:
    checked = check("SELECT id /* ; DROP TABLE file */ FROM ask.files -- ; DELETE FROM file", CATALOG)
    assert "DROP" not in checked.sql and "DELETE" not in checked.sql and "--" not in checked.sql


def test_read_only_ctes_joins_and_aliases_pass() -> None:
    text = ("WITH per_day AS (SELECT day, sum(revenue) AS revenue FROM ask.sales GROUP BY day) "
            "SELECT p.day, p.revenue, count(f.id) AS files FROM per_day AS p LEFT JOIN ask.files AS f "
            "ON f.day = p.day GROUP BY p.day, p.revenue ORDER BY p.day LIMIT 10")
    assert check(text, WITH_SALES).views == ("files", "sales")


def test_the_refusal_says_which_views_and_columns_exist() -> None:
    with pytest.raises(Refused, match=r"only the views ask.files can be read"):
        check("SELECT * FROM public.file", CATALOG)
    with pytest.raises(Refused, match=r"unknown column 'password'.*ask.files\(id, feed"):
        check("SELECT password FROM ask.files", CATALOG)
