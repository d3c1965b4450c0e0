"""Answers a question: the grammar (or, when it does not understand and one is configured, an LLM) writes SQL,
the guard checks it, and it runs read-only, under a statement timeout, as the role `filegate_ask`, seeing only
the feeds the asking user may read."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from filegate.ask import grammar, guard
from filegate.ask.readable_views import FEEDS_SETTING, Catalog
from filegate.ask.sales_view import ASK_ROLE, SalesNotLoaded, ensure_sales_view
from filegate.reporting.transactions import TransactionsTable
from filegate.storage.database import connect

log = logging.getLogger(__name__)
STATEMENT_TIMEOUT_MS = 5_000
NUMERIC = (int, float, Decimal)

SqlWriter = Callable[[str, Catalog], str]  # question, views → SQL (an LLM)


class AskForbidden(Exception):
    """The question needs a feed the user may not read."""


class AskUnavailable(Exception):
    """Ask cannot answer now: its table is not loaded yet, or its role is missing."""


@dataclass(frozen=True)
class Asker:
    """Who asks and where: the status store's DSN (where the views live), the feeds the user may read, the
    transactions feed's table (None: no sales questions), and an optional LLM."""

    dsn: str
    feeds: frozenset[str]
    sales: TransactionsTable | None = None
    writer: SqlWriter | None = None
    source: str = "FILEGATE_DB_URL"
    timeout_ms: int = STATEMENT_TIMEOUT_MS


@dataclass(frozen=True)
class Answer:
    question: str
    engine: str  # grammar or llm
    understood: str  # what the grammar understood, or the LLM's SQL as it came
    sql: str  # what ran
    columns: list[str]
    rows: list[dict[str, Any]]
    chart: dict[str, Any] | None
    elapsed_ms: float


def _readable_catalog(asker: Asker) -> Catalog:
    """The views this user may read: no sales view for someone who may not read the transactions feed."""
    readable = asker.sales if asker.sales is not None and asker.sales.feed in asker.feeds else None
    return Catalog.of(readable)


def write_sql(question: str, asker: Asker, today: date) -> tuple[str, str, str]:
    """(engine, what was understood, SQL) for the question, before the guard."""
    try:
        reading = grammar.read(question, today)
    except grammar.NotUnderstood:
        if asker.writer is None:
            raise
        text = asker.writer(question, _readable_catalog(asker))
        return "llm", text, text
    if reading.view == "sales":
        if asker.sales is None:
            raise AskUnavailable("no transactions feed with an aggregate in Postgres: sales questions need one")
        if asker.sales.feed not in asker.feeds:
            raise AskForbidden(f"sales questions read the feed {asker.sales.feed!r}, which you may not read")
    return "grammar", reading.summary(), reading.sql()


def ask(question: str, asker: Asker, today: date) -> Answer:
    started = time.monotonic()
    engine, understood, text = write_sql(question, asker, today)
    catalog = _readable_catalog(asker)
    checked = guard.check(text, catalog)
    log.info("ask (%s): %r → %s", engine, question, checked.sql)
    columns, rows = run(checked, catalog, asker)
    return Answer(question, engine, understood, checked.sql, columns, rows, chart_for(columns, rows),
                  round((time.monotonic() - started) * 1000, 1))


def run(checked: guard.Checked, catalog: Catalog, asker: Asker) -> tuple[list[str], list[dict[str, Any]]]:
    with connect(asker.dsn, source=asker.source, row_factory=dict_row, autocommit=True) as conn:
        if "sales" in checked.views and asker.sales is not None:
            try:
                ensure_sales_view(conn, catalog.view("sales"), asker.sales.schema,  # type: ignore[arg-type]
                                  asker.sales.table)
            except SalesNotLoaded as exc:
                raise AskUnavailable(str(exc)) from exc
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(asker.timeout_ms)))
            conn.execute("SELECT set_config(%s, %s, true)", (FEEDS_SETTING, ",".join(sorted(asker.feeds))))
            try:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ASK_ROLE)))
            except (psycopg.errors.UndefinedObject, psycopg.errors.InsufficientPrivilege) as exc:
                raise AskUnavailable(f"the database role {ASK_ROLE} is missing or not granted to the status "
                                     f"store's user (migration 0008 could not do it: {exc.diag.message_primary}); "
                                     f"an administrator runs: CREATE ROLE {ASK_ROLE} NOLOGIN; GRANT {ASK_ROLE} TO "
                                     "<that user>; see docs/ask.md") from exc
            cursor = conn.execute(checked.sql)  # type: ignore[arg-type]  # checked and re-rendered by the guard
            columns = [c.name for c in cursor.description or []]
            return columns, cursor.fetchall()


def chart_for(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A line over days, bars over anything else; nothing for a single number or a table without numbers."""
    if len(rows) < 2 or len(columns) < 2:
        return None
    label = columns[0]
    values = [c for c in columns[1:] if all(isinstance(r[c], NUMERIC) or r[c] is None for r in rows)]
    if not values or any(isinstance(r[label], NUMERIC) for r in rows):
        return None
    return {"kind": "line" if label == "day" else "bar", "x": label, "y": values}
