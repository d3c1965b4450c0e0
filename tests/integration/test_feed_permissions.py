"""Per-feed read permissions of the Filegate API, with MWAA's auth manager (FAB, per-DAG permissions on resources
`DAG:<dag_id>`) running in-process in Airflow's api-server app, and with the local stack's SimpleAuthManager.

A user may read a feed when the auth manager lets them read the DAG `process_<feed>`; the daily reports cover every
feed, so they need read access to `daily_report` and to every feed. The files live in a status-store database of
their own (same embedded Postgres), so the totals below are exact and no other test sees these rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from webapp_env import airflow_app, seed_file, token

from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
DATABASE = "filegate_perms"
FEEDS = ("orders", "trains")  # both have contracts; the limited user may read only orders
PER_FEED = 10
STATUSES = (Status.PROCESSED, Status.FAILED, Status.QUARANTINED)
REPORT_DAY = date(2026, 2, 4)
PASSWORDS = {"admin": "admin-pw", "limited": "limited-pw", "reporter": "reporter-pw", "nobody": "nobody-pw"}


@pytest.fixture(scope="module")
def perms_db(local_stack) -> Iterator[tuple[str, dict[str, str]]]:
    """A status store of its own: its DSN and the env that points the api-server's `filegate_db` at it."""
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = make_conninfo(local_stack.db_url, dbname=DATABASE)
    parts = conninfo_to_dict(dsn)
    connection = {**json.loads(local_stack.env["AIRFLOW_CONN_FILEGATE_DB"]), "schema": DATABASE}
    assert connection["host"] == parts["host"], "the Airflow connection and FILEGATE_DB_URL name different servers"
    yield dsn, {"AIRFLOW_CONN_FILEGATE_DB": json.dumps(connection), "FILEGATE_DB_URL": dsn}


@pytest.fixture(scope="module")
def seeded(perms_db) -> dict[str, list[int]]:
    """PER_FEED files per feed, interleaved (orders, trains, orders, …) so a list filtered after the query would
    come out short; statuses cycle processed/failed/quarantined; processed ones have quality and an API call."""
    store = StatusStore.connect(perms_db[0])
    ids: dict[str, list[int]] = {feed: [] for feed in FEEDS}
    for n in range(PER_FEED):
        for feed in FEEDS:
            actor = Actor(dag_id=f"process_{feed}", run_id="manual__2026-11-21T10:00:00+00:00",
                          task_id="process_files", try_number=1)
            target = STATUSES[n % 3]
            ids[feed].append(seed_file(
                store, actor, feed=feed, raw_key=f"raw/{feed}/2026/11/21/perm_{n:03d}.csv",
                name=f"perm_{feed}_{n:03d}.csv", sha256=f"{feed}-{n:064d}"[-64:], size_bytes=10 + n, target=target,
                rows=(5, 4), latency_ms=3.0, error=None if target == Status.PROCESSED else f"{feed} secret reason {n}"))
    return ids


FAILED_PER_FEED = sum(1 for n in range(PER_FEED) if STATUSES[n % 3] != Status.PROCESSED)


@pytest.fixture(scope="module")
def report_published(local_stack, perms_db, seeded) -> date:
    from filegate.reporting.archive import publish_report
    from filegate.reporting.daily import compute_daily_report
    from filegate.status.queries import StatusQueries

    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    publish_report(s3, local_stack.bucket, compute_daily_report(StatusQueries(perms_db[0]), REPORT_DAY))
    return REPORT_DAY


SLOT_DAY = date(2026, 2, 3)


@pytest.fixture(scope="module")
def slots_seeded(perms_db, seeded) -> None:
    """One missed delivery slot per feed on SLOT_DAY, and a late one with its file (the calendar's cells)."""
    from datetime import UTC, datetime, time, timedelta

    store = StatusStore.connect(perms_db[0])
    for feed in FEEDS:
        for hour, state in ((6, "missed"), (18, "late")):
            at = datetime.combine(SLOT_DAY, time(hour), UTC)
            row = {"feed": feed, "expected_at": at, "deadline_at": at + timedelta(hours=1), "local_day": SLOT_DAY,
                   "pattern": f"{feed}_*.csv", "files_expected": 1}
            store.slots.add([row])
            if state == "late":
                store.slots.attach(row, seeded[feed][0], at + timedelta(hours=3))
        for slot in store.slots.open_slots(feed):
            late = slot["expected_at"].hour == 18
            store.slots.set_state(slot["id"], "late" if late else "missed", delay_seconds=10_800 if late else None,
                                  satisfied_at=slot["expected_at"] + timedelta(hours=3) if late else None)


def bearer(client: TestClient, user: str) -> dict[str, str]:
    response = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def get(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    return client.get(f"/filegate/api/{path}", params=params, headers=headers)


def walk(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> tuple[list[dict[str, Any]], set]:
    """Every item of a cursor-paginated list, and every `total` the pages reported."""
    items: list[dict[str, Any]] = []
    totals = set()
    cursor = None
    while True:
        page = get(client, headers, path, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        totals.add(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items, totals


def test_queries_filter_by_a_set_of_feeds(perms_db, seeded) -> None:
    from datetime import UTC, datetime

    from filegate.status.queries import FileFilter, Period, StatusQueries

    queries = StatusQueries(perms_db[0])
    assert queries.feeds_seen() == ["orders", "trains"]
    assert queries.list_files(FileFilter()).total == 2 * PER_FEED
    assert queries.list_files(FileFilter(feeds={"orders"})).total == PER_FEED
    assert queries.list_files(FileFilter(feeds=())).total == 0  # no readable feed: nothing, never everything
    other = seeded["trains"][0]
    assert queries.file_detail(other, feeds={"orders"}) is None and queries.file_detail(other) is not None
    assert not queries.exists(other, feeds=()) and queries.exists(other, feeds={"trains"})
    today = Period.days(datetime.now(UTC).date())
    assert {r["feed"] for r in queries.counts(today, feeds={"trains"})} == {"trains"}
    assert queries.failures(feeds={"orders"}).total == FAILED_PER_FEED


# -- FAB (MWAA's auth manager) --------------------------------------------------------------------------------

class TestFabAuthManager:
    @pytest.fixture(scope="class")
    def client(self, local_stack, perms_db, seeded, report_published, tmp_path_factory) -> Iterator[TestClient]:
        home = tmp_path_factory.mktemp("airflow_fab")
        # `airflow db migrate` with the FAB auth manager configured creates FAB's tables too (its DB manager).
        with airflow_app(local_stack.env, home, AIRFLOW__CORE__AUTH_MANAGER=FAB, **perms_db[1]) as app:
            from airflow.api_fastapi.app import get_auth_manager

            manager = get_auth_manager()
            assert type(manager).__module__ + "." + type(manager).__name__ == FAB
            with manager.flask_app.app_context():  # type: ignore[attr-defined]
                sm = manager.security_manager  # type: ignore[attr-defined]

                def role(name: str, *dag_ids: str) -> Any:
                    created = sm.add_role(name)
                    for dag_id in dag_ids:
                        sm.add_permission_to_role(created, sm.create_permission("can_read", f"DAG:{dag_id}"))
                    return created

                users = {"admin": sm.find_role("Admin"), "limited": role("orders_reader", "process_orders"),
                         "reporter": role("orders_and_report_reader", "process_orders", "daily_report"),
                         "nobody": role("no_dags")}
                for name, user_role in users.items():
                    assert sm.add_user(name, name, "Test", f"{name}@example.com", user_role,
                                       password=PASSWORDS[name]), name
            yield TestClient(app)

    @pytest.fixture(scope="class")
    def admin(self, client) -> dict[str, str]:
        return bearer(client, "admin")

    @pytest.fixture(scope="class")
    def limited(self, client) -> dict[str, str]:
        return bearer(client, "limited")

    def test_feeds_lists_only_readable_feeds(self, client, admin, limited) -> None:
        assert [f["name"] for f in get(client, limited, "feeds").json()] == ["orders"]
        names = {f["name"] for f in get(client, admin, "feeds").json()}
        assert {"orders", "trains", "events", "marketplace"} <= names
        assert get(client, bearer(client, "nobody"), "feeds").json() == []

    def test_files_are_filtered_in_sql(self, client, admin, limited, seeded) -> None:
        items, totals = walk(client, limited, "files", limit=3)
        assert [f["id"] for f in items] == sorted(seeded["orders"], reverse=True)
        assert totals == {PER_FEED}  # every page's total counts only readable files
        items, totals = walk(client, admin, "files", limit=7)
        assert sorted(f["id"] for f in items) == sorted(seeded["orders"] + seeded["trains"])
        assert totals == {2 * PER_FEED}
        nobody = get(client, bearer(client, "nobody"), "files").json()
        assert nobody["items"] == [] and nobody["total"] == 0

    def test_feed_filter_naming_an_unreadable_feed_is_refused(self, client, admin, limited) -> None:
        for path in ("files", "errors", "counts"):
            refused = get(client, limited, path, feed="trains")
            assert refused.status_code == 403, (path, refused.text)
            assert "process_trains" in refused.json()["detail"]
            assert get(client, limited, path, feed="orders").status_code == 200
            assert get(client, admin, path, feed="trains").status_code == 200
        assert get(client, limited, "files", feed="orders").json()["total"] == PER_FEED

    def test_errors_and_counts_show_only_readable_feeds(self, client, admin, limited) -> None:
        items, totals = walk(client, limited, "errors", limit=2)
        assert {f["feed"] for f in items} == {"orders"} and totals == {FAILED_PER_FEED}
        assert not any("trains" in (f["error"] or "") for f in items)
        _, totals = walk(client, admin, "errors", limit=50)
        assert totals == {2 * FAILED_PER_FEED}
        counts = get(client, limited, "counts").json()
        assert counts["by_feed"] == {"orders": PER_FEED} and counts["total"] == PER_FEED
        assert {r["feed"] for r in counts["rows"]} == {"orders"}
        assert get(client, admin, "counts").json()["by_feed"] == {"orders": PER_FEED, "trains": PER_FEED}

    @pytest.mark.parametrize("suffix", ["", "/history", "/api-calls", "/quality", "/lineage"])
    def test_file_of_an_unreadable_feed_is_not_found(self, client, admin, limited, seeded, suffix) -> None:
        # processed files (index 0) have a quality result, so /quality answers 200 when the feed is readable
        other, own = seeded["trains"][0], seeded["orders"][0]
        hidden = get(client, limited, f"files/{other}{suffix}")
        missing = get(client, limited, f"files/999999999{suffix}")
        assert hidden.status_code == 404 and missing.status_code == 404, hidden.text
        # the same answer as an id that does not exist: no hint that the file is there, nor of its feed
        assert hidden.json()["detail"] == missing.json()["detail"].replace("999999999", str(other))
        assert "trains" not in hidden.text
        assert get(client, limited, f"files/{own}{suffix}").status_code == 200
        assert get(client, admin, f"files/{other}{suffix}").status_code == 200

    @pytest.mark.parametrize("what", ["summary", "aggregates", "schemas"])
    def test_summary_and_aggregates_need_the_feeds_dag(self, client, admin, limited, what) -> None:
        refused = get(client, limited, f"feeds/trains/{what}")
        assert refused.status_code == 403
        assert "read permission on the DAG process_trains" in refused.json()["detail"]
        # a feed that does not exist is refused the same way: the 404's list of feeds is for readers only
        unknown = get(client, limited, f"feeds/nosuchfeed/{what}")
        assert unknown.status_code == 403 and "trains" not in unknown.text
        assert get(client, limited, f"feeds/orders/{what}").status_code == 200
        assert get(client, admin, f"feeds/trains/{what}").status_code == 200
        assert get(client, admin, f"feeds/nosuchfeed/{what}").status_code == 404

    @pytest.mark.parametrize("path", ["transactions", "transactions/summary"])
    def test_transactions_need_the_marketplace_dag(self, client, admin, limited, path) -> None:
        refused = get(client, limited, path, seller="S0001")
        assert refused.status_code == 403
        assert "read permission on the DAG process_marketplace" in refused.json()["detail"]
        # past the permission check: this store has no marketplace table yet, and the answer says so
        allowed = get(client, admin, path, seller="S0001")
        assert allowed.status_code == 404 and "no file of feed 'marketplace' has been loaded" in allowed.text

    def test_ask_answers_only_from_readable_feeds(self, client, admin, limited, seeded) -> None:
        def ask(headers: dict[str, str], question: str) -> Any:
            return client.post("/filegate/api/ask", json={"question": question}, headers=headers)

        refused = ask(limited, "top 5 sellers by revenue last week")
        assert refused.status_code == 403 and "'marketplace'" in refused.json()["detail"]
        # past the permission check: no marketplace table in this store yet, and the answer says so
        assert ask(admin, "top 5 sellers by revenue last week").status_code == 503
        mine = ask(limited, "files per feed")
        assert mine.status_code == 200, mine.text
        assert mine.json()["rows"] == [{"feed": "orders", "files": PER_FEED}]
        assert ask(admin, "files per feed").json()["rows"] == [{"feed": f, "files": PER_FEED} for f in FEEDS]
        nothing = ask(bearer(client, "nobody"), "files per feed")
        assert nothing.status_code == 200 and nothing.json()["rows"] == []

    def test_reports_need_daily_report_and_every_feed(self, client, admin, limited) -> None:
        day = REPORT_DAY.isoformat()
        paths = ["reports", f"reports/{day}", f"reports/{day}/report.html", f"reports/{day}/failures.csv"]
        for headers, who in ((limited, "limited"), (bearer(client, "reporter"), "reporter")):
            for path in paths:
                refused = get(client, headers, path)
                assert refused.status_code == 403, (who, path, refused.text[:200])
                assert "daily_report" in refused.json()["detail"]
        for path in paths:
            assert get(client, admin, path).status_code == 200, path
        assert day in [r["day"] for r in get(client, admin, "reports").json()]

    def test_reprocess_and_downloads_follow_the_dags(self, client, admin, limited, seeded) -> None:
        # limited may read process_orders but not trigger reprocess_files: no reprocessing, even of its own feed
        assert get(client, limited, "me").json()["can_reprocess"] is False
        assert get(client, admin, "me").json()["can_reprocess"] is True
        failed = seeded["orders"][1]
        refused = client.post("/filegate/api/reprocess", json={"file_ids": [failed]}, headers=limited)
        assert refused.status_code == 403 and "reprocess_files" in refused.json()["detail"]
        assert get(client, limited, f"files/{failed}").json()["can_reprocess"] is False
        # a file of an unreadable feed: 404 for its download, as for its detail
        other = seeded["trains"][1]
        assert get(client, limited, f"files/{other}/download/raw").status_code == 404
        assert get(client, admin, f"files/{other}/download/raw").status_code == 404  # exists, but not in S3
        assert "gone from S3" in get(client, admin, f"files/{other}/download/raw").json()["detail"]
        # admin may trigger: the file checks pass, and this metadata database has no reprocess_files DAG
        missing = client.post("/filegate/api/reprocess", json={"file_ids": [other]}, headers=admin)
        assert missing.status_code == 409 and "reprocess_files" in missing.json()["detail"]

    def test_delivery_slots_follow_the_feeds_dags(self, client, admin, limited, slots_seeded, seeded) -> None:
        day = SLOT_DAY.isoformat()
        mine = get(client, limited, "deliveries", since=day, until=day).json()
        assert {(s["feed"], s["state"]) for s in mine["slots"]} == {("orders", "missed"), ("orders", "late")}
        late = next(s for s in mine["slots"] if s["state"] == "late")
        assert late["delay_seconds"] == 10_800 and [f["file_id"] for f in late["files"]] == [seeded["orders"][0]]
        assert mine["feeds"] == []  # stock_levels has an expect: block, but its DAG is not readable to limited
        refused = get(client, limited, "deliveries", feed="trains")
        assert refused.status_code == 403 and "process_trains" in refused.json()["detail"]
        everything = get(client, admin, "deliveries", since=day, until=day).json()
        assert {s["feed"] for s in everything["slots"]} == {"orders", "trains"}
        assert "stock_levels" in {f["feed"] for f in everything["feeds"]}
        nobody = get(client, bearer(client, "nobody"), "deliveries", since=day, until=day).json()
        assert nobody["slots"] == [] and nobody["feeds"] == []

    def test_page_and_identity_still_open_to_every_user(self, client) -> None:
        nobody = bearer(client, "nobody")
        assert get(client, nobody, "me").json()["name"] == "nobody"
        page = client.get("/filegate/page", headers=nobody)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        counts = get(client, nobody, "counts").json()
        assert counts["rows"] == [] and counts["total"] == 0


# -- SimpleAuthManager (the local stack's) --------------------------------------------------------------------

class TestSimpleAuthManager:
    @pytest.fixture(scope="class")
    def client(self, local_stack, perms_db, seeded, report_published, tmp_path_factory) -> Iterator[TestClient]:
        home = tmp_path_factory.mktemp("airflow_simple")
        with airflow_app(local_stack.env, home, **perms_db[1]) as app:
            yield TestClient(app)

    def test_viewer_reads_every_feed(self, client, seeded) -> None:
        viewer = {"Authorization": f"Bearer {token(client, 'viewer')}"}
        assert {"orders", "trains"} <= {f["name"] for f in get(client, viewer, "feeds").json()}
        items, totals = walk(client, viewer, "files", limit=7)
        assert sorted(f["id"] for f in items) == sorted(seeded["orders"] + seeded["trains"])
        assert totals == {2 * PER_FEED}
        assert get(client, viewer, "counts").json()["by_feed"] == {"orders": PER_FEED, "trains": PER_FEED}
        assert get(client, viewer, "errors", feed="trains").json()["total"] == FAILED_PER_FEED
        assert get(client, viewer, f"files/{seeded['trains'][0]}").status_code == 200
        assert get(client, viewer, "feeds/trains/summary").status_code == 200
        assert get(client, viewer, "feeds/trains/aggregates").status_code == 200
        assert get(client, viewer, f"reports/{REPORT_DAY}").status_code == 200
