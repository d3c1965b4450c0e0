"""The transactions API's queries: a feed's aggregated Postgres table (the marketplace's sales per seller,
product and day) read with typed business filters, grouped again on demand, and summed.

Everything is derived from the feed's contract, not written per feed: the dimensions are the aggregate's
`group_by`, the date column is the Parquet `partition_by` (or the one dimension named like a date), the measures
are the aggregate's, and each measure is re-aggregated the exact way: `sum` and `count` measures add up, `min` and
`max` stay min and max, and a `mean` is weighted by the aggregate's `count(*)` measure (a mean of means would be
wrong). Filters name a business concept (`seller`, `product`, `category`) and apply to the dimension called so or
`<name>_id`; a feed without it refuses the filter with the dimensions it has.

Queries run in a read-only transaction with a statement timeout; identifiers come only from the contract and
values only as parameters. No Arrow: the api-server runs this.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from filegate.contracts.model import Contract
from filegate.contracts.targets import dsn_source, target_dsn
from filegate.storage.database import connect

DEFAULT_FEED = "marketplace"
FILTERS = ("seller", "product", "category")
STATEMENT_TIMEOUT_MS = 10_000
MAX_LIMIT = 1000
INTEGER_TYPES = {"smallint", "integer", "bigint"}


def transactions_feed() -> str:
    """The feed the transactions API serves (FILEGATE_TRANSACTIONS_FEED, default `marketplace`)."""
    return os.environ.get("FILEGATE_TRANSACTIONS_FEED") or DEFAULT_FEED


class TransactionsUnavailable(Exception):
    """The feed has no aggregate published to Postgres (or it has not been loaded yet): nothing to query."""


class BadQuery(ValueError):
    """A filter, group or sort the feed's table cannot answer; the message lists what it can."""


@dataclass(frozen=True)
class Measure:
    name: str
    function: str  # sum, count, min, max, mean

    def regroup(self, weight: str | None, types: dict[str, str]) -> sql.Composable:
        column = sql.Identifier(self.name)
        if self.function in ("sum", "count"):
            # Postgres widens sum(bigint) to numeric: an integer measure stays an integer in the answer
            integral = types.get(self.name) in INTEGER_TYPES
            return sql.SQL("sum({})::bigint" if integral else "sum({})").format(column)
        if self.function in ("min", "max"):
            return sql.SQL(self.function + "({})").format(column)
        if weight is None:  # no count(*) to weight by: the plain mean of the groups' means
            return sql.SQL("avg({})").format(column)
        return sql.SQL("sum({c} * {w}) / nullif(sum({w}), 0)").format(c=column, w=sql.Identifier(weight))


@dataclass(frozen=True)
class TransactionsTable:
    """What the contract says about the feed's aggregated table."""

    feed: str
    dsn: str
    dsn_source: str
    schema: str
    table: str
    dimensions: tuple[str, ...]
    date_column: str | None
    measures: tuple[Measure, ...]
    weight: str | None  # the count(*) measure that weights means

    @classmethod
    def of(cls, contract: Contract) -> TransactionsTable:
        postgres = contract.destinations.postgres
        spec = contract.aggregate
        if postgres is None or spec is None:
            raise TransactionsUnavailable(
                f"feed {contract.name!r} has no aggregate published to Postgres (it needs an `aggregate` transform "
                "and destinations.postgres)")
        partition = contract.destinations.parquet.partition_by
        dated = [d for d in spec.group_by if d == partition] or [d for d in spec.group_by if "date" in d]
        measures = tuple(Measure(name, function) for name, function, _ in spec.parsed())
        weight = next((name for name, function, column in spec.parsed() if function == "count" and column == "*"),
                      None)
        return cls(contract.name, target_dsn(postgres), dsn_source(postgres), postgres.db_schema, postgres.table,
                   tuple(spec.group_by), dated[0] if dated else None, measures, weight)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.dimensions + tuple(m.name for m in self.measures)

    def dimension_for(self, concept: str) -> str:
        for candidate in (concept, f"{concept}_id"):
            if candidate in self.dimensions:
                return candidate
        raise BadQuery(f"feed {self.feed!r} has no {concept} dimension (its dimensions: "
                       f"{', '.join(self.dimensions)})")


@dataclass(frozen=True)
class TransactionFilter:
    since: date | None = None
    until: date | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # seller/product/category → allowed values

    def where(self, table: TransactionsTable) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        if self.since or self.until:
            if table.date_column is None:
                raise BadQuery(f"feed {table.feed!r} has no date dimension to filter by since/until")
            if self.since:
                clauses.append(sql.SQL("{} >= %s").format(sql.Identifier(table.date_column)))
                params.append(self.since)
            if self.until:
                clauses.append(sql.SQL("{} <= %s").format(sql.Identifier(table.date_column)))
                params.append(self.until)
        for concept, allowed in self.values.items():
            if allowed:
                clauses.append(sql.SQL("{}::text = ANY(%s)").format(sql.Identifier(table.dimension_for(concept))))
                params.append(list(allowed))
        return (sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("TRUE")), params


@dataclass(frozen=True)
class Rows:
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int


def _sort(table: TransactionsTable, columns: tuple[str, ...], sort: str | None) -> sql.Composable:
    if not sort:  # newest day first, then the dimensions: a stable order for paging
        order = [c for c in columns if c == table.date_column]
        keys = [sql.SQL("{} DESC").format(sql.Identifier(c)) for c in order]
        keys += [sql.Identifier(c) for c in columns if c in table.dimensions and c not in order]
        return sql.SQL(", ").join(keys or [sql.SQL("1")])
    column, descending = sort.removeprefix("-"), sort.startswith("-")
    if column not in columns:
        raise BadQuery(f"cannot sort by {column!r}; sort by one of {', '.join(columns)} (prefix - for descending)")
    tie = [sql.Identifier(c) for c in columns if c in table.dimensions and c != column]
    return sql.SQL(", ").join([sql.SQL("{} {} NULLS LAST").format(sql.Identifier(column),
                                                                   sql.SQL("DESC" if descending else "ASC")), *tie])


Statements = list[tuple[sql.Composable, list[Any]]]


def _run(table: TransactionsTable, build: Callable[[dict[str, str]], Statements]) -> list[list[dict[str, Any]]]:
    """Runs the statements `build` makes from the table's column types, read-only, under a statement timeout."""
    with connect(table.dsn, source=table.dsn_source, row_factory=dict_row) as conn:
        conn.read_only = True
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS)))
            types = {r["column_name"]: r["data_type"] for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s", (table.schema, table.table)).fetchall()}
            if not types:
                raise TransactionsUnavailable(f"{table.schema}.{table.table} does not exist yet: no file of feed "
                                              f"{table.feed!r} has been loaded")
            return [conn.execute(statement, params).fetchall() for statement, params in build(types)]


def query_rows(table: TransactionsTable, where: TransactionFilter, *, group_by: tuple[str, ...] = (),
               sort: str | None = None, limit: int = 100, offset: int = 0) -> Rows:
    """The table's rows matching `where`, or, with `group_by` (dimensions), its measures per group."""
    unknown = [g for g in group_by if g not in table.dimensions]
    if unknown:
        raise BadQuery(f"cannot group by {', '.join(unknown)}; group by any of {', '.join(table.dimensions)}")
    condition, params = where.where(table)
    source = sql.Identifier(table.schema, table.table)
    columns = tuple(group_by) + tuple(m.name for m in table.measures) if group_by else table.columns
    order = _sort(table, columns, sort)

    def build(types: dict[str, str]) -> Statements:
        if group_by:
            keys = sql.SQL(", ").join(sql.Identifier(g) for g in group_by)
            measures = sql.SQL(", ").join(sql.SQL("{} AS {}").format(m.regroup(table.weight, types),
                                                                      sql.Identifier(m.name))
                                          for m in table.measures)
            body = sql.SQL("SELECT {k}, {m} FROM {t} WHERE {w} GROUP BY {k}").format(k=keys, m=measures, t=source,
                                                                                      w=condition)
        else:
            body = sql.SQL("SELECT {} FROM {} WHERE {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns), source, condition)
        page = sql.SQL("SELECT * FROM ({}) AS q ORDER BY {} LIMIT {} OFFSET {}").format(
            body, order, sql.Literal(min(limit, MAX_LIMIT)), sql.Literal(offset))
        return [(page, params), (sql.SQL("SELECT count(*) AS n FROM ({}) AS q").format(body), params)]

    rows, counted = _run(table, build)
    return Rows(list(columns), rows, int(counted[0]["n"]))


def summarize(table: TransactionsTable, where: TransactionFilter) -> dict[str, Any]:
    """One row over everything matching `where`: each measure re-aggregated, the table rows it covers, the
    first and last day, and how many distinct values each dimension takes."""
    condition, params = where.where(table)

    def build(types: dict[str, str]) -> Statements:
        parts = [sql.SQL("count(*) AS rows")]
        parts += [sql.SQL("{} AS {}").format(m.regroup(table.weight, types), sql.Identifier(m.name))
                  for m in table.measures]
        if table.date_column:
            day = sql.Identifier(table.date_column)
            parts += [sql.SQL("min({}) AS first_day").format(day), sql.SQL("max({}) AS last_day").format(day)]
        parts += [sql.SQL("count(DISTINCT {}) AS {}").format(sql.Identifier(d), sql.Identifier(f"distinct_{d}"))
                  for d in table.dimensions if d != table.date_column]
        return [(sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(parts), sql.Identifier(table.schema, table.table), condition), params)]

    [[row]] = _run(table, build)
    return dict(row)
