"""The one gate every Ask query passes, whoever wrote it (the grammar or an LLM).

Accepted: exactly one SELECT (subqueries, joins, read-only CTEs and set operations inside it are fine) whose
tables are only the catalog's views (`ask.<view>`, or the bare view name), whose columns are only those views'
columns or names the query itself defines (aliases, CTEs), whose functions are on FUNCTIONS, and that has no
SELECT INTO, locking clause or table sample. The outer query gets a LIMIT (added, or clamped to MAX_ROWS).
What runs is sqlglot's rendering of the checked tree, never the text that came in: a comment cannot hide a
second statement, and what was checked is what runs.

The guard is one of three walls: the query also runs in a read-only transaction, under a statement timeout, as
a role that can read only the views (migration 0008).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from filegate.ask.readable_views import SCHEMA, Catalog

MAX_ROWS = 500
MAX_SQL_CHARS = 8_000
# Aggregates, arithmetic on values and dates: nothing that sleeps, reads files, sets settings or reaches out.
FUNCTIONS = frozenset({
    "count", "sum", "avg", "min", "max", "stddev", "variance", "round", "abs", "floor", "ceil", "coalesce",
    "nullif", "greatest", "least", "cast", "extract", "timestamptrunc", "datetrunc", "timetostr", "lower", "upper",
    "length", "concat", "substring", "trim", "currentdate", "currenttimestamp", "case", "if", "div", "percentilecont",
    "countif", "dateadd", "datesub", "date", "todate",
})
REFUSED_NODES: dict[type[exp.Expression], str] = {
    exp.Into: "SELECT INTO creates a table",
    exp.Lock: "locking clauses (FOR UPDATE/SHARE) take locks",
    exp.TableSample: "TABLESAMPLE",
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE",
    exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER", exp.Command: "a command",
    exp.Set: "SET", exp.Copy: "COPY", exp.Transaction: "transaction control", exp.Use: "USE",
}


class Refused(ValueError):
    """The SQL is not a query Ask runs; the message says which rule it broke."""


@dataclass(frozen=True)
class Checked:
    sql: str  # what runs: sqlglot's rendering of the checked query, with its LIMIT
    views: tuple[str, ...]  # the catalog views it reads


def check(text: str, catalog: Catalog, *, max_rows: int = MAX_ROWS) -> Checked:
    if len(text) > MAX_SQL_CHARS:
        raise Refused(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except ParseError as exc:
        raise Refused(f"the SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise Refused(f"exactly one statement is allowed, got {len(statements)}")
    [tree] = statements
    if not isinstance(tree, exp.Select):
        raise Refused(f"only a SELECT is allowed, got {tree.key.upper()}")
    for node in tree.walk():
        for kind, what in REFUSED_NODES.items():
            if isinstance(node, kind):
                raise Refused(f"not allowed: {what}")
        if isinstance(node, exp.Anonymous) or (_is_call(node) and node.key not in FUNCTIONS):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            raise Refused(f"function {name.lower()}() is not allowed; allowed: aggregates, round, coalesce, "
                          "nullif, date_trunc, extract, cast and a few string and date functions")
    views = _check_tables(tree, catalog)
    _check_columns(tree, catalog, views)
    _limit(tree, max_rows)
    return Checked(tree.sql(dialect="postgres", comments=False), tuple(sorted(views)))


def _is_call(node: exp.Expression) -> bool:
    """A function call, not an operator (sqlglot models AND, BETWEEN, IN, NOT … as functions too)."""
    return isinstance(node, exp.Func) and not isinstance(node, exp.Binary | exp.Connector | exp.Unary | exp.Predicate)


def _defined_names(tree: exp.Expression) -> tuple[set[str], set[str]]:
    """Names the query defines itself: (CTE and table aliases, column aliases)."""
    tables: set[str] = set()
    columns: set[str] = set()
    for cte in tree.find_all(exp.CTE):
        tables.add(cte.alias_or_name.lower())
        columns |= {c.name.lower() for c in cte.args["alias"].columns} if cte.args.get("alias") else set()
    for alias in tree.find_all(exp.TableAlias):
        if alias.name:
            tables.add(alias.name.lower())
        columns |= {c.name.lower() for c in alias.columns}
    for alias in tree.find_all(exp.Alias):
        columns.add(alias.alias.lower())
    return tables, columns


def _check_tables(tree: exp.Expression, catalog: Catalog) -> set[str]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    used: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):  # a function in FROM: generate_series(), dblink(), …
            raise Refused(f"only the views {_names(catalog)} can be read, not {table.sql(dialect='postgres')}")
        name, schema = table.name.lower(), table.db.lower()
        if table.catalog:
            raise Refused(f"{table.sql(dialect='postgres')}: no database prefix")
        if not schema and name in ctes:
            continue
        if schema not in ("", SCHEMA) or catalog.view(name) is None:
            raise Refused(f"only the views {_names(catalog)} can be read, not {table.sql(dialect='postgres')}")
        table.set("db", exp.to_identifier(SCHEMA))  # never resolved through search_path
        used.add(name)
    if not used:
        raise Refused(f"the query reads none of the views {_names(catalog)}")
    return used


def _check_columns(tree: exp.Expression, catalog: Catalog, views: set[str]) -> None:
    known = {c.lower() for v in views for c in catalog.view(v).columns}  # type: ignore[union-attr]
    tables, aliases = _defined_names(tree)
    tables |= views | {f"{SCHEMA}.{v}" for v in views}
    for column in tree.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        name = column.name.lower()
        if name not in known and name not in aliases:
            raise Refused(f"unknown column {name!r}; the views have: "
                          + "; ".join(f"{SCHEMA}.{v}({', '.join(catalog.view(v).columns)})"  # type: ignore[union-attr]
                                      for v in sorted(views)))
        if column.table and column.table.lower() not in tables:
            raise Refused(f"{column.sql(dialect='postgres')}: {column.table!r} is not a table of this query")


def _limit(tree: exp.Select, max_rows: int) -> None:
    limit = tree.args.get("limit")
    if limit is None:
        tree.limit(max_rows, copy=False)
        return
    value = limit.expression
    if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
        raise Refused("LIMIT must be a whole number")
    if int(value.this) > max_rows:
        tree.limit(max_rows, copy=False)


def _names(catalog: Catalog) -> str:
    return ", ".join(v.qualified for v in catalog.views)
