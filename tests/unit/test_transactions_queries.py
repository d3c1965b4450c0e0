"""What the transactions API derives from a contract, and the questions it refuses before reaching Postgres."""

from __future__ import annotations

from datetime import date

import pytest

from filegate.contracts import get_contract
from filegate.reporting.transactions import (
    BadQuery,
    Measure,
    TransactionFilter,
    TransactionsTable,
    TransactionsUnavailable,
    query_rows,
)


@pytest.fixture
def marketplace(monkeypatch) -> TransactionsTable:
    monkeypatch.setenv("FILEGATE_DB_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    return TransactionsTable.of(get_contract("marketplace"))


def test_the_table_comes_from_the_contract(marketplace) -> None:
    assert (marketplace.schema, marketplace.table) == ("feeds", "marketplace_daily_sales")
    assert marketplace.dimensions == ("seller_id", "product_id", "sale_date")
    assert marketplace.date_column == "sale_date"
    assert [(m.name, m.function) for m in marketplace.measures] == [
        ("units", "sum"), ("revenue", "sum"), ("transactions", "count"), ("average_price", "mean")]
    assert marketplace.weight == "transactions"


def test_a_feed_without_a_postgres_aggregate_is_unavailable(monkeypatch) -> None:
    monkeypatch.setenv("FILEGATE_DB_URL", "postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(TransactionsUnavailable, match="'orders' has no aggregate published to Postgres"):
        TransactionsTable.of(get_contract("orders"))


@pytest.mark.parametrize(("measure", "weight", "types", "expected"), [
    (Measure("units", "sum"), None, {"units": "bigint"}, 'sum("units")::bigint'),
    (Measure("revenue", "sum"), None, {"revenue": "numeric"}, 'sum("revenue")'),
    (Measure("low", "min"), None, {}, 'min("low")'),
    (Measure("average_price", "mean"), "transactions", {},
     'sum("average_price" * "transactions") / nullif(sum("transactions"), 0)'),
    (Measure("average_price", "mean"), None, {}, 'avg("average_price")'),
])
def test_each_measure_is_reaggregated_exactly(measure, weight, types, expected) -> None:
    assert measure.regroup(weight, types).as_string(None) == expected


def test_filters_become_parameters_never_sql_text(marketplace) -> None:
    hostile = "S0001'; DROP TABLE feeds.marketplace_daily_sales; --"
    condition, params = TransactionFilter(since=date(2026, 11, 1), values={"seller": (hostile,)}).where(marketplace)
    assert condition.as_string(None) == '"sale_date" >= %s AND "seller_id"::text = ANY(%s)'
    assert params == [date(2026, 11, 1), [hostile]]


@pytest.mark.parametrize(("question", "says"), [
    ({"where": TransactionFilter(values={"category": ("books",)})}, "has no category dimension"),
    ({"where": TransactionFilter(), "group_by": ("region",)}, "cannot group by region"),
    ({"where": TransactionFilter(), "sort": "-profit"}, "cannot sort by 'profit'"),
    ({"where": TransactionFilter(), "group_by": ("seller_id",), "sort": "product_id"}, "cannot sort by 'product_id'"),
])
def test_questions_the_table_cannot_answer_are_refused_before_any_query(marketplace, question, says) -> None:
    with pytest.raises(BadQuery, match=says):
        query_rows(marketplace, **question)
