"""The transactions API against a table the real loader wrote: every answer is checked against the raw
transactions the table was aggregated from (computed here in Python), not against the API's own SQL."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient
from webapp_env import airflow_app, token

from filegate.contracts import get_contract
from filegate.loading import load_postgres

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FEED = "txtest"
TABLE = "txtest_daily_sales"
SELLERS = [f"S{n:04d}" for n in range(1, 7)]
PRODUCTS = [f"P{n:05d}" for n in range(1, 9)]
FIRST_DAY = date(2026, 11, 1)
DAYS = 12


@pytest.fixture(scope="module")
def raw_transactions() -> list[dict[str, Any]]:
    """Completed marketplace transactions, as the feed's file would hold them after its filter."""
    rng = random.Random(7)
    return [{"seller_id": rng.choice(SELLERS), "product_id": rng.choice(PRODUCTS),
             "sale_date": FIRST_DAY + timedelta(days=rng.randrange(DAYS)), "quantity": rng.randint(1, 20),
             "unit_price": Decimal(rng.randint(100, 5000)) / 100} for _ in range(2000)]


@pytest.fixture(scope="module")
def feeds_dir(tmp_path_factory) -> Path:
    """The marketplace contract under a feed name (and table) of this test's own."""
    folder = tmp_path_factory.mktemp("transactions_feeds")
    contract = yaml.safe_load((ROOT / "include" / "feeds" / "marketplace.yaml").read_text())
    contract["name"] = FEED
    contract["destinations"]["postgres"]["table"] = TABLE
    (folder / f"{FEED}.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def loaded(local_stack, feeds_dir, raw_transactions, tmp_path_factory) -> None:
    """The aggregate the feed's transforms produce, published by the real Write-Audit-Publish loader."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in raw_transactions:
        groups[(row["seller_id"], row["product_id"], row["sale_date"])].append(row)
    keys = sorted(groups)
    table = pa.table({
        "seller_id": [k[0] for k in keys], "product_id": [k[1] for k in keys],
        "sale_date": pa.array([k[2] for k in keys], pa.date32()),
        "units": [sum(r["quantity"] for r in groups[k]) for k in keys],
        "revenue": pa.array([sum(r["quantity"] * r["unit_price"] for r in groups[k]) for k in keys],
                            pa.decimal128(18, 2)),
        "transactions": [len(groups[k]) for k in keys],
        "average_price": [float(sum(r["unit_price"] for r in groups[k]) / len(groups[k])) for k in keys],
    })
    path = tmp_path_factory.mktemp("transactions_parquet") / "part-0.parquet"
    pq.write_table(table, path)
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS feeds.{TABLE}")
    contract = get_contract(FEED, feeds_dir)
    report = load_postgres(local_stack.db_url, contract, [path], sha256="f" * 64, expected_rows=len(keys))
    assert report.published == len(keys)


@pytest.fixture(scope="module")
def client(local_stack, feeds_dir, loaded, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_transactions")
    with airflow_app(local_stack.env, home, FILEGATE_FEEDS_DIR=str(feeds_dir),
                     FILEGATE_TRANSACTIONS_FEED=FEED) as app:
        test_client = TestClient(app)
        test_client.headers["Authorization"] = f"Bearer {token(test_client, 'admin')}"
        yield test_client


def get(client: TestClient, path: str = "", **params: Any) -> dict[str, Any]:
    response = client.get(f"/filegate/api/transactions{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def within(rows: list[dict[str, Any]], since: date, until: date, **only: list[str]) -> list[dict[str, Any]]:
    return [r for r in rows if since <= r["sale_date"] <= until
            and all(r[f"{concept}_id"] in values for concept, values in only.items())]


def test_top_sellers_by_revenue_in_a_week(client, raw_transactions) -> None:
    since, until = date(2026, 11, 3), date(2026, 11, 9)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for row in within(raw_transactions, since, until):
        revenue[row["seller_id"]] += row["quantity"] * row["unit_price"]
    expected = sorted(revenue.items(), key=lambda item: -item[1])[:3]

    body = get(client, group_by="seller_id", sort="-revenue", limit=3, since=since, until=until)

    assert [(r["seller_id"], Decimal(r["revenue"])) for r in body["rows"]] == expected
    assert body["total"] == len(revenue) and body["next_offset"] == 3
    assert body["columns"] == ["seller_id", "units", "revenue", "transactions", "average_price"]


def test_units_of_one_product_per_day(client, raw_transactions) -> None:
    units: dict[date, int] = defaultdict(int)
    for row in within(raw_transactions, FIRST_DAY, date(2026, 11, 30), product=["P00001"]):
        units[row["sale_date"]] += row["quantity"]

    body = get(client, group_by="sale_date", product="P00001", sort="sale_date", since="2026-11-01",
               until="2026-11-30")

    assert [(date.fromisoformat(r["sale_date"]), r["units"]) for r in body["rows"]] == sorted(units.items())


def test_summary_reaggregates_exactly(client, raw_transactions) -> None:
    chosen = within(raw_transactions, date(2026, 11, 2), date(2026, 11, 10), seller=["S0002", "S0003"])

    totals = get(client, "/summary", seller=["S0002", "S0003"], since="2026-11-02", until="2026-11-10")["totals"]

    assert totals["units"] == sum(r["quantity"] for r in chosen)
    assert Decimal(totals["revenue"]) == sum(r["quantity"] * r["unit_price"] for r in chosen)
    assert totals["transactions"] == len(chosen)
    # the mean price of the transactions, not the mean of the per-group means
    assert float(totals["average_price"]) == pytest.approx(float(sum(r["unit_price"] for r in chosen) / len(chosen)))
    assert totals["rows"] == len({(r["seller_id"], r["product_id"], r["sale_date"]) for r in chosen})
    assert (totals["first_day"], totals["last_day"]) == (min(r["sale_date"] for r in chosen).isoformat(),
                                                         max(r["sale_date"] for r in chosen).isoformat())
    assert totals["distinct_seller_id"] == 2
    assert totals["distinct_product_id"] == len({r["product_id"] for r in chosen})


def test_pages_cover_every_row_once_newest_day_first(client, raw_transactions) -> None:
    seen, offset, days = [], 0, []
    while offset is not None:
        body = get(client, limit=37, offset=offset)
        seen += [(r["seller_id"], r["product_id"], r["sale_date"]) for r in body["rows"]]
        days += [r["sale_date"] for r in body["rows"]]
        offset = body["next_offset"]
    expected = {(r["seller_id"], r["product_id"], r["sale_date"].isoformat()) for r in raw_transactions}
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
    assert days == sorted(days, reverse=True)


@pytest.mark.parametrize(("params", "says"), [
    ({"category": "books"}, "has no category dimension (its dimensions: seller_id, product_id, sale_date)"),
    ({"sort": "-profit"}, "cannot sort by 'profit'; sort by one of"),
    ({"group_by": "region"}, "cannot group by region; group by any of seller_id, product_id, sale_date"),
    ({"since": "2026-11-05", "until": "2026-11-01"}, "since (2026-11-05) is after until (2026-11-01)"),
])
def test_a_question_the_table_cannot_answer_says_why(client, params, says) -> None:
    response = client.get("/filegate/api/transactions", params=params)
    assert response.status_code == 422 and says in response.json()["detail"]


def test_filters_are_typed_and_documented(client) -> None:
    document = client.get("/filegate/openapi.json").json()
    for path in ("/api/transactions", "/api/transactions/summary"):
        params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert {"since", "until", "seller", "product", "category"} <= set(params)
        assert params["since"]["schema"]["anyOf"][0] == {"type": "string", "format": "date"}
    assert {"group_by", "sort", "limit", "offset"} <= {
        p["name"] for p in document["paths"]["/api/transactions"]["get"]["parameters"]}
