"""The built-in Ask grammar: questions in words → the SQL it writes, and clear refusals for the rest."""

from __future__ import annotations

from datetime import date

import pytest

from filegate.ask.grammar import DATES, EXAMPLES, NotUnderstood, read
from filegate.ask.guard import check
from filegate.ask.readable_views import FILES, Catalog, View

TODAY = date(2026, 12, 3)  # a Thursday
SALES = View("sales", "sales", {c: c for c in ("day", "seller", "product", "units", "revenue", "transactions",
                                                "average_price")}, "marketplace")


@pytest.mark.parametrize(("words", "first", "last"), [
    ("today", "2026-12-03", "2026-12-03"),
    ("yesterday", "2026-12-02", "2026-12-02"),
    ("last week", "2026-11-23", "2026-11-29"),
    ("this week", "2026-11-30", "2026-12-03"),
    ("last 7 days", "2026-11-27", "2026-12-03"),
    ("in the past 2 weeks", "2026-11-20", "2026-12-03"),
    ("in November", "2026-11-01", "2026-11-30"),
    ("in December", "2026-12-01", "2026-12-31"),
    ("in January", "2026-01-01", "2026-01-31"),
    ("in February 2024", "2024-02-01", "2024-02-29"),
    ("last month", "2026-11-01", "2026-11-30"),
    ("this month", "2026-12-01", "2026-12-03"),
    ("between 2026-11-01 and 2026-11-10", "2026-11-01", "2026-11-10"),
    ("from 2026-10-01 to 2026-10-31", "2026-10-01", "2026-10-31"),
    ("since 2026-11-15", "2026-11-15", "2026-12-03"),
    ("on 2026-11-05", "2026-11-05", "2026-11-05"),
    ("last year", "2025-01-01", "2025-12-31"),
])
def test_date_ranges_in_words(words: str, first: str, last: str) -> None:
    reading = read(f"revenue {words}", TODAY)
    assert reading.period == (date.fromisoformat(first), date.fromisoformat(last))


def test_every_date_rule_is_covered_above() -> None:
    assert len(DATES) == 15  # a new rule needs a line in test_date_ranges_in_words and in docs/ask.md


def test_top_sellers_by_revenue_last_week() -> None:
    assert read("Top 5 sellers by revenue last week?", TODAY).sql() == (
        "SELECT seller, sum(revenue) AS revenue FROM ask.sales WHERE day BETWEEN DATE '2026-11-23' AND "
        "DATE '2026-11-29' GROUP BY seller ORDER BY revenue DESC NULLS LAST, seller LIMIT 5")


def test_units_of_a_product_per_day() -> None:
    assert read("units of product P00001 per day in November", TODAY).sql() == (
        "SELECT day, CAST(sum(units) AS BIGINT) AS units FROM ask.sales WHERE day BETWEEN DATE '2026-11-01' AND "
        "DATE '2026-11-30' AND product = 'P00001' GROUP BY day ORDER BY day")


def test_file_questions_filter_by_feed_and_status() -> None:
    reading = read("failed files per day of the orders feed this week", TODAY)
    assert reading.view == "files" and reading.filters == {"status": ["failed"], "feed": ["orders"]}
    assert reading.dimension is not None and reading.dimension.name == "day"
    assert read("files per feed with status quarantined", TODAY).filters == {"status": ["quarantined"]}


def test_several_values_and_metrics() -> None:
    reading = read("revenue and units of S0002 and S0003 daily", TODAY)
    assert [m.name for m in reading.metrics] == ["revenue", "units"]
    assert "seller IN ('S0002', 'S0003')" in reading.sql()
    assert [m.name for m in read("files and rejected rows per status", TODAY).metrics] == ["files", "rejected_rows"]


def test_bottom_n_sorts_ascending_and_top_defaults_to_ten() -> None:
    assert "ORDER BY units ASC NULLS LAST, product LIMIT 3" in read("bottom 3 products by units", TODAY).sql()
    assert read("top products by revenue", TODAY).sql().endswith("LIMIT 10")


@pytest.mark.parametrize(("question", "reason"), [
    ("what is the weather like", "do not know the words 'weather', 'like'"),
    ("top 3 products", "name what to measure"),
    ("revenue per feed", "feed does not apply to sales metrics"),
    ("revenue and files", "cannot be mixed"),
    ("revenue per seller per product", "one grouping at a time"),
    ("revenue between 2026-11-10 and 2026-11-01", "starts (2026-11-10) after it ends"),
    ("revenue of seller S0001' OR 1=1 --", "do not know the words"),
    ("files; DROP TABLE file", "do not know the words 'drop', 'table'"),
])
def test_what_the_grammar_does_not_understand_it_says(question: str, reason: str) -> None:
    with pytest.raises(NotUnderstood) as raised:
        read(question, TODAY)
    assert reason in str(raised.value)
    assert "Questions I understand look like" in str(raised.value) and EXAMPLES[0] in str(raised.value)


@pytest.mark.parametrize("question", EXAMPLES)
def test_every_example_passes_the_guard(question: str) -> None:
    reading = read(question, TODAY)
    checked = check(reading.sql(), Catalog((FILES, SALES)))
    assert checked.views == (reading.view,)
