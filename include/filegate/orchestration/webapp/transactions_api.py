"""The transactions API: the marketplace feed's aggregated sales (or the feed FILEGATE_TRANSACTIONS_FEED names)
under routes whose business filters are typed and listed in the OpenAPI document. The queries live in
filegate.reporting.transactions; this module maps them to HTTP and to the feed's permissions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from filegate.orchestration.webapp.auth import Access, CurrentUser
from filegate.orchestration.webapp.backend import Backend, get_backend
from filegate.reporting.transactions import (
    BadQuery,
    TransactionFilter,
    TransactionsTable,
    TransactionsUnavailable,
    query_rows,
    summarize,
    transactions_feed,
)

MAX_VALUES = 100
RULE = ("Rows of the feed FILEGATE_TRANSACTIONS_FEED names (default `marketplace`), from its aggregated Postgres "
        "table. Needs read permission on that feed's DAG `process_<feed>` (403 otherwise). Exact decimals "
        "(revenue, prices) are strings.")
router = APIRouter(prefix="/api/transactions", tags=["transactions"])


def _values(what: str, example: str) -> Any:
    return Query(description=f"only these {what}s (repeat the parameter for several), e.g. `{example}`",
                 max_length=MAX_VALUES)


def transaction_filter(
    since: Annotated[date | None, Query(description="first day included (the feed's date dimension)")] = None,
    until: Annotated[date | None, Query(description="last day included")] = None,
    seller: Annotated[list[str] | None, _values("seller", "S0001")] = None,
    product: Annotated[list[str] | None, _values("product", "P00001")] = None,
    category: Annotated[list[str] | None, _values("category", "books")] = None,
) -> TransactionFilter:
    if since and until and since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"since ({since}) is after until ({until})")
    values = {name: tuple(given) for name, given in (("seller", seller), ("product", product),
                                                       ("category", category)) if given}
    return TransactionFilter(since=since, until=until, values=values)


Filters = Annotated[TransactionFilter, Depends(transaction_filter)]


class TransactionsOut(BaseModel):
    feed: str
    source: str = Field(description="the table read, e.g. `feeds.marketplace_daily_sales`")
    group_by: list[str]
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int = Field(description="rows (or groups) matching the filters")
    limit: int
    offset: int
    next_offset: int | None = Field(description="pass as `offset` for the next page; null on the last one")


class TransactionsSummary(BaseModel):
    feed: str
    source: str
    totals: dict[str, Any] = Field(description="each measure over the matching rows (sums add up, means are "
                                               "weighted by the count measure), `rows`, `first_day`, `last_day` "
                                               "and `distinct_<dimension>` counts")


def _table(backend: Backend, access: Any) -> TransactionsTable:
    feed = transactions_feed()
    access.require(feed)
    contract = backend.contract(feed)
    if contract is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the transactions feed {feed!r} has no contract")
    try:
        return TransactionsTable.of(contract)
    except TransactionsUnavailable as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _answer(call: Any) -> Any:
    try:
        return call()
    except BadQuery as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except TransactionsUnavailable as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, "the query ran past its statement timeout; narrow "
                                                             "the filters") from exc


@router.get("", response_model=TransactionsOut, summary="Aggregated transactions, filtered, grouped and sorted",
            description=RULE + " Without `group_by`: the table's rows (one per seller, product and day). With it: "
                               "the measures per group, re-aggregated exactly.")
def transactions(user: CurrentUser, backend: Annotated[Backend, Depends(get_backend)], access: Access,
                 where: Filters,
                 group_by: Annotated[list[str] | None, Query(description="dimensions to group by, e.g. "
                                                                          "`seller_id`; repeat for several")] = None,
                 sort: Annotated[str | None, Query(description="a column, `-` first for descending, e.g. "
                                                               "`-revenue`; default newest day first",
                                                   pattern=r"^-?[a-z_][a-z0-9_]{0,62}$")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> TransactionsOut:
    table = _table(backend, access)
    found = _answer(lambda: query_rows(table, where, group_by=tuple(group_by or ()), sort=sort, limit=limit,
                                       offset=offset))
    following = offset + len(found.rows)
    return TransactionsOut(feed=table.feed, source=f"{table.schema}.{table.table}", group_by=list(group_by or ()),
                           columns=found.columns, rows=found.rows, total=found.total, limit=limit, offset=offset,
                           next_offset=following if following < found.total else None)


@router.get("/summary", response_model=TransactionsSummary,
            summary="Totals of the aggregated transactions matching the filters", description=RULE)
def transactions_summary(user: CurrentUser, backend: Annotated[Backend, Depends(get_backend)], access: Access,
                         where: Filters) -> TransactionsSummary:
    table = _table(backend, access)
    totals = _answer(lambda: summarize(table, where))
    return TransactionsSummary(feed=table.feed, source=f"{table.schema}.{table.table}", totals=totals)
