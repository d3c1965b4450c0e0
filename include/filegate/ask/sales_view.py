"""`ask.sales`, created when it is first needed: its table (`feeds.<the feed's table>`) is made by the loader on
the feed's first load, after the status-store migrations ran, so migration 0008 cannot create it.

The view renames the aggregate's columns to the catalog's words and, like `ask.files`, shows nothing unless the
transaction-local setting `filegate.ask_feeds` names the feed. Its comment records what it was made from, so a
change of feed or contract recreates it. It is created by the api-server's own database user (the views' owner),
never by the Ask role.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from filegate.ask.readable_views import FEEDS_SETTING, SCHEMA, View

ASK_ROLE = "filegate_ask"
VIEW_LOCK = 724_311_008  # one process (re)creates the view at a time


class SalesNotLoaded(Exception):
    """The feed's aggregated table does not exist yet: no file of the feed has been loaded."""


def _definition(view: View, schema: str, table: str) -> str:
    """What the view's comment records: its source and columns, compared on every use."""
    return f"{schema}.{table}: " + ", ".join(f"{c}={s}" for c, s in (view.source or {}).items())


def ensure_sales_view(conn: psycopg.Connection, view: View, schema: str, table: str) -> None:
    """Creates or recreates ask.<view> over `schema.table` unless it is already that view. Commits."""
    wanted = _definition(view, schema, table)
    cur = conn.cursor(row_factory=tuple_row)
    [current] = cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')",
                            (f"{SCHEMA}.{view.name}",)).fetchone() or (None,)
    if current == wanted:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (VIEW_LOCK,))
        [exists] = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{table}",)).fetchone() or (False,)
        if not exists:
            raise SalesNotLoaded(f"{schema}.{table} does not exist yet: no file of feed {view.feed!r} has been "
                                 "loaded")
        target = sql.Identifier(SCHEMA, view.name)
        columns = sql.SQL(", ").join(sql.SQL("{} AS {}").format(sql.Identifier(source), sql.Identifier(name))
                                     for name, source in (view.source or {}).items())
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(target))
        conn.execute(sql.SQL(
            "CREATE VIEW {view} AS SELECT {columns} FROM {table}"
            " WHERE {feed} = ANY (string_to_array(current_setting({setting}, true), ','))").format(
            view=target, columns=columns, table=sql.Identifier(schema, table), feed=sql.Literal(view.feed),
            setting=sql.Literal(FEEDS_SETTING)))
        conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(target, sql.Literal(wanted)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(target, sql.Identifier(ASK_ROLE)))
