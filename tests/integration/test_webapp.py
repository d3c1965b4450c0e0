"""The Filegate app inside Airflow's api-server app (in-process TestClient) against a real status store and S3:
auth, pagination, filters, detail, counts, summaries, reports, aggregates, and the upload endpoint end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest
from airflow_runs import migrated_airflow_env
from fastapi.testclient import TestClient
from webapp_env import airflow_app, seed_file, token

from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UPLOAD_LIMIT = 12 << 20
ACTOR = Actor(dag_id="process_webtest_a", run_id="manual__2026-11-21T10:00:00+00:00", task_id="process_files",
              try_number=1)
# Feeds no contract defines: their rows never meet a processing run of another test.
SEED_FEEDS = ("webtest_a", "webtest_b")
SEED_STATUSES = (Status.PROCESSED, Status.FAILED, Status.QUARANTINED)


@pytest.fixture(scope="module")
def s3(local_stack):
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def seeded(local_stack) -> dict[str, list[int]]:
    """75 files per seed feed, statuses cycling processed/failed/quarantined, each through the real lifecycle."""
    store = StatusStore.connect(local_stack.db_url)
    ids: dict[str, list[int]] = {feed: [] for feed in SEED_FEEDS}
    for feed in SEED_FEEDS:
        for n in range(75):
            target = SEED_STATUSES[n % 3]
            ids[feed].append(seed_file(
                store, ACTOR, feed=feed, raw_key=f"raw/{feed}/2026/11/21/file_{n:03d}.csv", name=f"file_{n:03d}.csv",
                sha256=f"{feed}-{n:064d}"[-64:], size_bytes=100 + n, target=target, rows=(10, 9), latency_ms=12.5,
                outputs={"summary": f"processed/{feed}/_summaries/f{n}.json"},
                error=None if target == Status.PROCESSED else f"<b>bad</b> file {n} & reason"))
    return ids


@pytest.fixture(scope="module")
def client(local_stack, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_webapp")
    with airflow_app(local_stack.env, home, FILEGATE_UPLOAD_MAX_BYTES=str(UPLOAD_LIMIT)) as app:
        yield TestClient(app)


@pytest.fixture(scope="module")
def admin(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client, 'admin')}"}


@pytest.fixture(scope="module")
def viewer_token(client) -> str:
    return token(client, "viewer")


# -- auth -----------------------------------------------------------------------------------------------------

ENDPOINTS = ["/filegate/api/me", "/filegate/api/files", "/filegate/api/files/1", "/filegate/api/files/1/history",
             "/filegate/api/files/1/api-calls", "/filegate/api/files/1/quality", "/filegate/api/counts",
             "/filegate/api/errors", "/filegate/api/feeds", "/filegate/api/feeds/orders/summary",
             "/filegate/api/feeds/orders/aggregates", "/filegate/api/feeds/orders/schemas", "/filegate/api/reports",
             "/filegate/api/reports/2026-11-20",
             "/filegate/openapi.json", "/filegate/docs", "/filegate/static/app.js", "/filegate/api/series",
             "/filegate/api/files/1/download/raw", "/filegate/static/docs.js", "/filegate/api/deliveries",
             "/filegate/static/swagger/swagger-ui-bundle.js"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_needs_a_user(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 401, (path, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")  # not the SPA's index.html


def test_upload_needs_a_user(client) -> None:
    response = client.post("/filegate/api/feeds/orders/files", files={"file": ("a.csv", b"x")})
    assert response.status_code == 401
    assert client.post("/filegate/api/reprocess", json={"file_ids": [1]}).status_code == 401


def test_bad_token_is_refused(client) -> None:
    response = client.get("/filegate/api/files", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 403


def test_page_sends_anonymous_visitors_to_login(client) -> None:
    response = client.get("/filegate/page", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"].startswith("/api/v2/auth/login?next=%2Ffilegate%2Fpage")


def test_page_and_api_accept_the_ui_cookie(client, viewer_token) -> None:
    cookies = {"_token": viewer_token}
    page = client.get("/filegate/page", cookies=cookies)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Filegate</h1>" in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    me = client.get("/filegate/api/me", cookies=cookies)
    assert me.json()["name"] == "viewer" and me.json()["role"].lower() == "viewer"
    assert client.get("/filegate/static/app.js", cookies=cookies).headers["content-type"].startswith(
        "text/javascript")


def test_plugin_registers_the_nav_entry(client, admin) -> None:
    plugins = client.get("/api/v2/plugins", headers=admin).json()["plugins"]
    filegate = next(p for p in plugins if p["name"] == "filegate")
    assert filegate["external_views"][0]["href"] == "/filegate/page"
    assert filegate["external_views"][0]["url_route"] == "filegate"
    assert filegate["fastapi_apps"][0]["url_prefix"] == "/filegate"


def test_openapi_documents_the_api(client, admin) -> None:
    spec = client.get("/filegate/openapi.json", headers=admin).json()
    for path in ("/api/files", "/api/files/{file_id}", "/api/feeds/{feed}/files", "/api/counts", "/api/errors",
                 "/api/feeds/{feed}/aggregates", "/api/reports"):
        assert path in spec["paths"], path
    assert "multipart/form-data" in spec["paths"]["/api/feeds/{feed}/files"]["post"]["requestBody"]["content"]


# -- lists, filters, pagination -------------------------------------------------------------------------------

def test_pagination_walks_every_file_once(client, admin, seeded) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"feed": "webtest_a", "limit": 20} | ({"cursor": cursor} if cursor else {})
        page = client.get("/filegate/api/files", params=params, headers=admin).json()
        assert page["total"] == 75
        seen += [f["id"] for f in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and sorted(seen, reverse=True) == seen and sorted(seen) == sorted(seeded["webtest_a"])


def test_filters_by_status_name_and_date(client, admin, seeded) -> None:
    failed = client.get("/filegate/api/files", params={"feed": "webtest_b", "status": "failed"}, headers=admin).json()
    assert failed["total"] == 25 and {f["status"] for f in failed["items"]} == {"failed"}
    two = client.get("/filegate/api/files", params=[("feed", "webtest_b"), ("status", "failed"),
                                                    ("status", "quarantined")], headers=admin).json()
    assert two["total"] == 50
    named = client.get("/filegate/api/files", params={"feed": "webtest_a", "q": "FILE_07"}, headers=admin).json()
    assert sorted(f["name"] for f in named["items"]) == [f"file_{n:03d}.csv" for n in range(70, 75)]
    literal = client.get("/filegate/api/files", params={"feed": "webtest_a", "q": "file_%"}, headers=admin).json()
    assert literal["total"] == 0  # % is a character to look for, not a wildcard
    today = datetime.now(UTC).date()
    in_range = client.get("/filegate/api/files", params={"feed": "webtest_a", "since": str(today)},
                          headers=admin).json()
    assert in_range["total"] == 75
    tomorrow = str(today + timedelta(days=1))
    future = client.get("/filegate/api/files", params={"feed": "webtest_a", "since": tomorrow, "until": tomorrow},
                        headers=admin).json()
    assert future["total"] == 0


def test_bad_filters_are_explained(client, admin) -> None:
    response = client.get("/filegate/api/files", params={"status": "lost"}, headers=admin)
    assert response.status_code == 422 and "unknown status lost" in response.text
    response = client.get("/filegate/api/files", params={"since": "2026-11-20", "until": "2026-11-01"},
                          headers=admin)
    assert response.status_code == 422
    assert client.get("/filegate/api/files", params={"limit": 0}, headers=admin).status_code == 422


def test_file_detail_with_steps_and_log_links(client, admin, seeded) -> None:
    file_id = seeded["webtest_a"][0]  # processed
    detail = client.get(f"/filegate/api/files/{file_id}", headers=admin).json()
    assert detail["file"]["status"] == "processed"
    assert [e["to_status"] for e in detail["history"]] == ["pending", "downloaded", "queued", "processing",
                                                          "processed"]
    assert detail["quality"]["rows_valid"] == 9 and detail["api_calls"][0]["status_code"] == 200
    step = detail["steps"][0]
    assert step["log_url"] == ("/dags/process_webtest_a/runs/manual__2026-11-21T10%3A00%3A00%2B00%3A00"
                               "/tasks/process_files?try_number=1")
    assert detail["outputs"] == [{"name": "summary", "key": "processed/webtest_a/_summaries/f0.json",
                                  "uri": "s3://filegate-local/processed/webtest_a/_summaries/f0.json"}]
    assert client.get(f"/filegate/api/files/{file_id}/history", headers=admin).json() == detail["history"]
    assert client.get("/filegate/api/files/999999999", headers=admin).status_code == 404
    assert client.get("/filegate/api/files/999999999/quality", headers=admin).status_code == 404


def test_file_detail_shows_schema_drift_and_the_feed_lists_its_schema_versions(client, admin, local_stack) -> None:
    """`pdfs` files never carry a tabular schema of their own: these versions meet no other test's processing."""
    store = StatusStore.connect(local_stack.db_url)
    ids = [seed_file(store, ACTOR, feed="pdfs", raw_key=f"raw/pdfs/2026/11/21/drift_{n}.csv", name=f"drift_{n}.csv",
                     sha256=f"drift-{n:064d}"[-64:], size_bytes=10, target=Status.PROCESSED, rows=(1, 1),
                     latency_ms=1.0) for n in range(2)]
    v1 = [{"name": "id", "type": "int", "nullable": False, "declared": False}]
    v2 = [*v1, {"name": "note", "type": "string", "nullable": True, "declared": False}]
    drift = {"policy": "warn", "verdict": "warn", "from_version": 1, "summary": "1 schema change from version 1: "
             "column note added at position 2 (string, nullable)",
             "changes": [{"kind": "added", "column": "note", "message": "column note added at position 2 (string, "
                                                                      "nullable)", "type": "string", "position": 2}]}
    assert store.schemas.record(ids[0], "pdfs", v1, accepted=True) == 1
    assert store.schemas.record(ids[1], "pdfs", v2, accepted=True, drift=drift) == 2

    plain = client.get(f"/filegate/api/files/{ids[0]}", headers=admin).json()
    assert plain["schema_drift"] is None
    detail = client.get(f"/filegate/api/files/{ids[1]}", headers=admin).json()["schema_drift"]
    assert (detail["action"], detail["from_version"], detail["to_version"], detail["policy"]) == ("warned", 1, 2,
                                                                                                  "warn")
    assert detail["changes"] == drift["changes"] and detail["columns"] == v2

    history = client.get("/filegate/api/feeds/pdfs/schemas", headers=admin).json()
    assert (history["feed"], history["policy"], history["current"]) == ("pdfs", "warn", 2)
    assert [(v["version"], v["file_id"], v["file_name"]) for v in history["versions"]] == [
        (1, ids[0], "drift_0.csv"), (2, ids[1], "drift_1.csv")]
    assert history["versions"][1]["columns"] == v2
    assert client.get("/filegate/api/feeds/nosuchfeed/schemas", headers=admin).status_code == 404


def test_counts_errors_and_feed_summary(client, admin, seeded, local_stack) -> None:
    counts = client.get("/filegate/api/counts", headers=admin).json()
    assert {r["status"]: r["files"] for r in counts["rows"] if r["feed"] == "webtest_a"} == {
        "processed": 25, "failed": 25, "quarantined": 25}
    errors = client.get("/filegate/api/errors", params={"feed": "webtest_b", "limit": 10}, headers=admin).json()
    assert errors["total"] == 50 and errors["items"][0]["error"].startswith("<b>bad</b> file")
    summary = client.get("/filegate/api/feeds/orders/summary", headers=admin)
    assert summary.status_code == 200 and summary.json()["feed"] == "orders"
    assert client.get("/filegate/api/feeds/webtest_a/summary", headers=admin).status_code == 404  # no contract
    assert client.get("/filegate/api/feeds/..%2Fetc/summary", headers=admin).status_code in (404, 422)


def test_aggregates_degrade_then_read_postgres(client, admin, local_stack) -> None:
    absent = client.get("/filegate/api/feeds/orders/aggregates", headers=admin).json()
    if not absent["available"]:
        assert "no published output" in absent["reason"]
    with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS feeds")
        conn.execute("DROP TABLE IF EXISTS feeds.orders_daily_agg")
        conn.execute("CREATE TABLE feeds.orders_daily_agg (seller_id text, product text, day date, total numeric)")
        conn.execute("INSERT INTO feeds.orders_daily_agg VALUES ('S1','P1','2026-11-20',10.5),"
                     " ('S1','P2','2026-11-20',3), ('S2','P1','2026-11-21',7)")
    try:
        found = client.get("/filegate/api/feeds/orders/aggregates", params={"where": "seller_id:S1"},
                           headers=admin).json()
        assert found["available"] and found["source"] == "postgres" and found["total"] == 2
        assert {r["product"] for r in found["rows"]} == {"P1", "P2"}
        bad = client.get("/filegate/api/feeds/orders/aggregates", params={"where": "nope:1"}, headers=admin)
        assert bad.status_code == 422 and "unknown column" in bad.text
    finally:
        with psycopg.connect(local_stack.db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE feeds.orders_daily_agg")


def test_aggregates_parquet_fallback_is_bounded_per_request(client, admin, s3, local_stack, monkeypatch) -> None:
    """Past the per-request byte budget the answer is flagged `truncated`; when not even the newest object fits,
    413 and nothing is read."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from filegate.reporting import aggregates as agg

    keys = [f"processed/orders/zz_budget_check/part-{n}.parquet" for n in range(3)]
    sizes = []
    for n, key in enumerate(keys):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"seller_id": [f"S{n}"] * 500, "n": list(range(500))}), buffer)
        s3.put_object(Bucket=local_stack.bucket, Key=key, Body=buffer.getvalue())
        sizes.append(buffer.tell())
    try:
        monkeypatch.setattr(agg, "MAX_PARQUET_BYTES", max(sizes) + 16)  # one object's worth
        found = client.get("/filegate/api/feeds/orders/aggregates", params={"limit": 5}, headers=admin)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["source"] == "s3" and body["truncated"] is True and body["total"] == 500
        assert body["reason"].startswith("partial: read the newest 1 of ")
        monkeypatch.setattr(agg, "MAX_PARQUET_BYTES", min(sizes) - 1)
        refused = client.get("/filegate/api/feeds/orders/aggregates", headers=admin)
        assert refused.status_code == 413 and "reads per request" in refused.json()["detail"]
    finally:
        for key in keys:
            s3.delete_object(Bucket=local_stack.bucket, Key=key)


def test_reports_are_listed_and_served(client, admin, s3, local_stack) -> None:
    from filegate.reporting.archive import publish_report
    from filegate.reporting.daily import compute_daily_report
    from filegate.status.queries import StatusQueries

    day = date(2026, 2, 3)
    publish_report(s3, local_stack.bucket, compute_daily_report(StatusQueries(local_stack.db_url), day))
    listed = client.get("/filegate/api/reports", headers=admin).json()
    assert {"day": "2026-02-03", "files": {n: f"api/reports/2026-02-03/{n}" for n in
                                           ("report.html", "report.json", "report.csv", "failures.csv")}} in listed
    html = client.get("/filegate/api/reports/2026-02-03/report.html", headers=admin)
    assert html.status_code == 200 and "default-src 'none'" in html.headers["content-security-policy"]
    assert "Filegate daily report" in html.text
    assert client.get("/filegate/api/reports/2026-02-03", headers=admin).json()["day"] == "2026-02-03"
    assert client.get("/filegate/api/reports/1999-01-01", headers=admin).status_code == 404
    assert client.get("/filegate/api/reports/2026-02-03/secret.txt", headers=admin).status_code == 422


# -- upload ---------------------------------------------------------------------------------------------------

def orders_csv(first_id: int, rows: int = 5) -> bytes:
    lines = ["order_id,order_date,customer_email,sku,quantity,unit_price,currency"]
    lines += [f"{first_id + i},2026-11-21,buyer{i}@example.com,ABC-{1000 + i},{i + 1},2.50,EUR" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(client, headers, feed="orders", name="upload.csv", body=b"a,b\n", metadata=None, **kwargs):
    files = []
    if metadata is not None:
        files.append(("metadata", (None, json.dumps(metadata) if not isinstance(metadata, str) else metadata)))
    files.append(("file", (name, body, "text/csv")))
    return client.post(f"/filegate/api/feeds/{feed}/files", files=files, headers=headers, **kwargs)


def raw_keys(s3, bucket: str, feed: str = "orders") -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"raw/{feed}/").get("Contents", [])}


def no_open_multipart_uploads(s3, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_viewer_may_not_upload(client, viewer_token, s3, local_stack) -> None:
    before = raw_keys(s3, local_stack.bucket)
    response = upload(client, {"Authorization": f"Bearer {viewer_token}"}, body=orders_csv(1))
    assert response.status_code == 403 and "may not trigger process_orders" in response.text
    assert raw_keys(s3, local_stack.bucket) == before


def test_operator_may_upload(client) -> None:
    headers = {"Authorization": f"Bearer {token(client, 'operator')}"}
    feeds = client.get("/filegate/api/feeds", headers=headers).json()
    assert next(f for f in feeds if f["name"] == "orders")["can_upload"] is True


@pytest.mark.parametrize(("name", "body", "feed", "code", "message"), [
    ("empty.csv", b"", "orders", 422, "is empty"),
    ("report.pdf", b"%PDF-1.4", "orders", 422, "takes files matching '*.csv'"),
    ("data.csv", b"a\n", "nosuchfeed", 404, "unknown feed 'nosuchfeed'"),
    ("data.csv", b"a\n", "Orders;rm", 422, ""),
    ("", b"a\n", "orders", 422, ""),
])
def test_bad_uploads_store_nothing(client, admin, s3, local_stack, name, body, feed, code, message) -> None:
    before = raw_keys(s3, local_stack.bucket)
    response = upload(client, admin, feed=feed, name=name, body=body)
    assert response.status_code == code, response.text
    assert message in response.text
    assert raw_keys(s3, local_stack.bucket) == before


def test_bad_metadata_is_refused(client, admin, s3, local_stack) -> None:
    before = raw_keys(s3, local_stack.bucket)
    assert upload(client, admin, metadata="{not json").status_code == 422
    assert "extra" in upload(client, admin, metadata={"evil": 1}).text.lower()
    too_big = upload(client, admin, metadata={"params": {"x": "y" * 4000}})
    assert too_big.status_code == 422 and "larger than 1536 bytes" in too_big.text
    late = client.post("/filegate/api/feeds/orders/files", headers=admin,
                       files=[("file", ("late.csv", b"a\n")), ("metadata", (None, "{}"))])
    assert late.status_code == 422 and "must come before" in late.text
    assert client.post("/filegate/api/feeds/orders/files", headers=admin, content=b"x",
                       ).status_code == 415
    assert raw_keys(s3, local_stack.bucket) == before


def test_oversize_upload_is_aborted_midstream(client, admin, s3, local_stack) -> None:
    """Past one 8 MiB part (a multipart upload exists by then) and over the limit: 413, nothing left in S3."""
    before = raw_keys(s3, local_stack.bucket)
    response = upload(client, admin, name="huge.csv", body=b"x" * (UPLOAD_LIMIT + 1))
    assert response.status_code == 413 and "exceeds the upload limit" in response.text
    assert raw_keys(s3, local_stack.bucket) == before
    assert no_open_multipart_uploads(s3, local_stack.bucket)


def test_oversize_content_length_is_refused_before_reading() -> None:
    import asyncio

    from fastapi import HTTPException

    from filegate.contracts import get_contract
    from filegate.orchestration.webapp.multipart import stream_upload

    read = []

    async def chunks():
        read.append(1)
        yield b"--xyz--\r\n"

    with pytest.raises(HTTPException) as caught:
        asyncio.run(stream_upload(chunks(), content_type="multipart/form-data; boundary=xyz",
                                  content_length=str(UPLOAD_LIMIT * 2), contract=get_contract("orders"), s3=None,
                                  bucket="unused", user="t", max_bytes=UPLOAD_LIMIT, part_bytes=8 << 20))
    assert caught.value.status_code == 413 and read == []


def test_hostile_name_is_sanitized_and_never_overwrites(client, admin, s3, local_stack) -> None:
    body = b"order_id\n1\n"
    first = upload(client, admin, name="../../../etc/passwd\u0000<script>.csv", body=body)
    assert first.status_code == 201, first.text
    key = first.json()["raw_key"]
    today = datetime.now(UTC).date()
    assert key.startswith(f"raw/orders/{today:%Y/%m/%d}/") and ".." not in key and "<" not in key
    assert key.count("/") == 5
    second = upload(client, admin, name="../../../etc/passwd\u0000<script>.csv", body=body)
    assert second.status_code == 201 and second.json()["raw_key"] != key  # raw/ is never overwritten
    for k in (key, second.json()["raw_key"]):
        s3.delete_object(Bucket=local_stack.bucket, Key=k)  # keep the processing test's sweep to its own files


def test_multipart_upload_of_a_larger_file(client, admin, s3, local_stack) -> None:
    body = b"order_id\n" + b"1\n" * (5 << 20)  # ~10 MiB: two S3 parts
    response = upload(client, admin, name="big.csv", body=body)
    assert response.status_code == 201, response.text
    key = response.json()["raw_key"]
    try:
        head = s3.head_object(Bucket=local_stack.bucket, Key=key)
        assert head["ContentLength"] == len(body) and response.json()["size_bytes"] == len(body)
        assert no_open_multipart_uploads(s3, local_stack.bucket)
    finally:
        s3.delete_object(Bucket=local_stack.bucket, Key=key)


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_upload")
    return migrated_airflow_env(local_stack.env, home)


def test_upload_lands_in_raw_and_gets_processed(client, admin, s3, local_stack, airflow_env) -> None:
    params = {"page_map": {"part1": [0, 1], "part2": [2]}, "label": "ünïcode"}
    response = upload(client, admin, name="web upload 2026-11-21.csv", body=orders_csv(900_001),
                      metadata={"params": params, "note": "from the test"})
    assert response.status_code == 201, response.text
    result = response.json()
    key = result["raw_key"]
    assert key == f"raw/orders/{datetime.now(UTC).date():%Y/%m/%d}/web_upload_2026-11-21.csv"
    assert result["uploaded_by"] == "admin" and result["params"] == params and result["size_bytes"] > 0
    head = s3.head_object(Bucket=local_stack.bucket, Key=key)
    assert json.loads(head["Metadata"]["filegate-params"]) == params
    assert head["Metadata"]["filegate-uploaded-by"] == "admin"

    run = subprocess.run([sys.executable, str(Path(__file__).with_name("dag_test_runner.py")), str(ROOT / "dags"),
                          "process_orders"], env=airflow_env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1])["state"] == "success"

    listed = client.get("/filegate/api/files", params={"raw_key": key}, headers=admin).json()
    assert listed["total"] == 1
    file_row = listed["items"][0]
    assert file_row["status"] == "processed", file_row
    detail = client.get(f"/filegate/api/files/{file_row['id']}", headers=admin).json()
    assert detail["quality"]["rows_valid"] == 5
    assert any(s["task_id"] == "deliver_records" and s["log_url"].startswith("/dags/process_orders/runs/")
               for s in detail["steps"])
    assert any(o["name"] == "parquet" for o in detail["outputs"])


# -- the operator's console: series, downloads, reprocessing, offline docs ------------------------------------

def test_series_per_day_feeds_the_charts(client, admin, seeded) -> None:
    today = datetime.now(UTC).date()
    series = client.get("/filegate/api/series", params={"feed": "webtest_a"}, headers=admin).json()
    assert series["days"] == [str(today - timedelta(days=n)) for n in range(6, -1, -1)]  # 7 days, oldest first
    assert {r["status"]: r["files"] for r in series["files"] if r["day"] == str(today)} == {
        "processed": 25, "failed": 25, "quarantined": 25}
    assert series["rows"] == [{"day": str(today), "feed": "webtest_a", "files": 25, "rows_total": 250,
                               "rows_rejected": 25}]
    (latency,) = series["latency"]
    assert latency["day"] == str(today) and latency["files"] == 75 and 0 <= latency["p50_s"] <= latency["p95_s"]
    everything = client.get("/filegate/api/series", headers=admin).json()
    assert {"webtest_a", "webtest_b"} <= {r["feed"] for r in everything["rows"]}
    assert client.get("/filegate/api/series", params={"since": "2020-01-01"}, headers=admin).status_code == 422


@pytest.fixture(scope="module")
def quarantined_with_outputs(local_stack, s3) -> dict:
    """A quarantined file whose raw copy (3 MiB: several chunks), rejected rows and reason are in S3."""
    store = StatusStore.connect(local_stack.db_url)
    raw_key = "raw/webtest_a/2026/11/22/big file é.csv"
    body = b"".join(b"%08d,row,\xc3\xa9\n" % n for n in range(240_000))
    outputs = {"raw": raw_key, "quarantine_rows": "quarantine/webtest_a/2026/11/22/big-1.rejected.csv",
               "summary": "quarantine/webtest_a/2026/11/22/big-1.reason.json"}
    s3.put_object(Bucket=local_stack.bucket, Key=raw_key, Body=body)
    s3.put_object(Bucket=local_stack.bucket, Key=outputs["quarantine_rows"], Body=b"_row,a,_reasons\n2,x,bad\n")
    s3.put_object(Bucket=local_stack.bucket, Key=outputs["summary"], Body=b'{"reason": "too many rejects"}')
    reg = store.register(feed="webtest_a", source="upload", raw_key=raw_key, name="big file é.csv",
                         sha256="d" * 64, size_bytes=len(body), actor=ACTOR)
    store.queue([reg.file_id], ACTOR)
    store.claim(ACTOR, file_ids=[reg.file_id])
    store.transition(reg.file_id, Status.QUARANTINED, ACTOR, error="too many rejects", outputs=outputs)
    return {"id": reg.file_id, "body": body, "outputs": outputs}


def test_downloads_stream_each_kind_from_s3(client, admin, quarantined_with_outputs, seeded, s3, local_stack) -> None:
    from filegate.orchestration.webapp import actions

    file_id = quarantined_with_outputs["id"]
    detail = client.get(f"/filegate/api/files/{file_id}", headers=admin).json()
    assert detail["downloads"] == {kind: f"api/files/{file_id}/download/{kind}" for kind in ("raw", "rejected",
                                                                                           "reason")}
    assert detail["can_reprocess"] is True
    # identity: Airflow's app gzips responses for clients that accept it, and a gzipped one has no length
    with client.stream("GET", f"/filegate/api/files/{file_id}/download/raw",
                       headers={**admin, "Accept-Encoding": "identity"}) as raw:
        assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
        assert raw.headers["content-disposition"] == (
            "attachment; filename=\"big file ?.csv\"; filename*=UTF-8''big%20file%20%C3%A9.csv")
        assert raw.headers["content-length"] == str(len(quarantined_with_outputs["body"]))
        assert raw.read() == quarantined_with_outputs["body"]
    # What the response iterates over: S3's body a chunk at a time (3 MiB → 3 chunks of at most 1 MiB), closed after.
    body = s3.get_object(Bucket=local_stack.bucket, Key=quarantined_with_outputs["outputs"]["raw"])["Body"]
    chunks = list(actions.s3_chunks(body))
    assert max(map(len, chunks)) == actions.CHUNK_BYTES and b"".join(chunks) == quarantined_with_outputs["body"]
    rejected = client.get(f"/filegate/api/files/{file_id}/download/rejected", headers=admin)
    assert rejected.headers["content-type"].startswith("text/csv") and rejected.text.endswith("2,x,bad\n")
    assert 'filename="big-1.rejected.csv"' in rejected.headers["content-disposition"]
    reason = client.get(f"/filegate/api/files/{file_id}/download/reason", headers=admin)
    assert reason.json() == {"reason": "too many rejects"}
    # a kind the file does not have, a kind that does not exist, a file that does not exist
    assert client.get(f"/filegate/api/files/{file_id}/download/summary", headers=admin).status_code == 404
    assert client.get(f"/filegate/api/files/{file_id}/download/parquet", headers=admin).status_code == 422
    assert client.get("/filegate/api/files/999999999/download/raw", headers=admin).status_code == 404
    processed = seeded["webtest_a"][0]  # its summary is under processed/: a summary, never a "reason"
    assert client.get(f"/filegate/api/files/{processed}/download/reason", headers=admin).status_code == 404
    gone = client.get(f"/filegate/api/files/{processed}/download/summary", headers=admin)  # not in S3
    assert gone.status_code == 404 and "gone from S3" in gone.json()["detail"]


def test_reprocess_is_checked_then_triggered_and_noted(client, admin, viewer_token, seeded, monkeypatch) -> None:
    from filegate.orchestration.webapp import actions

    quarantined, failed, processed = seeded["webtest_b"][2], seeded["webtest_b"][1], seeded["webtest_b"][0]
    post = lambda ids, headers=admin: client.post("/filegate/api/reprocess", json={"file_ids": ids},  # noqa: E731
                                                  headers=headers)
    viewer = {"Authorization": f"Bearer {viewer_token}"}
    assert client.get("/filegate/api/me", headers=viewer).json()["can_reprocess"] is False
    refused = post([quarantined], viewer)
    assert refused.status_code == 403 and "may not trigger reprocess_files" in refused.json()["detail"]
    assert post([processed]).status_code == 409 and "is processed" in post([processed]).text
    assert post([quarantined, 999999999]).status_code == 404
    assert post([]).status_code == 422
    # This api-server's metadata database has no reprocess_files DAG: Airflow refuses, nothing is noted.
    before = client.get(f"/filegate/api/files/{quarantined}/history", headers=admin).json()
    missing = post([quarantined])
    assert missing.status_code == 409 and "reprocess_files" in missing.json()["detail"], missing.text
    assert client.get(f"/filegate/api/files/{quarantined}/history", headers=admin).json() == before

    asked: list = []

    def trigger(file_ids, *, user, from_ui):
        asked.append((file_ids, user, from_ui))
        return actions.TriggeredRun(dag_id="reprocess_files", run_id="manual__2026-12-01T10:00:00+00:00",
                                    paused=False)

    monkeypatch.setattr(actions, "trigger_reprocess", trigger)
    done = post([failed, quarantined, failed])
    assert done.status_code == 201, done.text
    assert done.json() == {"dag_id": "reprocess_files", "run_id": "manual__2026-12-01T10:00:00+00:00",
                           "run_url": "/dags/reprocess_files/runs/manual__2026-12-01T10%3A00%3A00%2B00%3A00",
                           "file_ids": sorted([failed, quarantined]), "requested_by": "admin", "paused": False}
    assert asked == [(sorted([failed, quarantined]), "admin", False)]
    for file_id, file_status in ((failed, "failed"), (quarantined, "quarantined")):
        detail = client.get(f"/filegate/api/files/{file_id}", headers=admin).json()
        note = detail["history"][-1]
        assert note["message"] == "reprocess requested by admin (run manual__2026-12-01T10:00:00+00:00)"
        assert (note["from_status"], note["to_status"], note["dag_id"]) == (file_status, file_status,
                                                                             "reprocess_files")
        assert detail["file"]["status"] == file_status  # a note, not a transition
        assert all(s["dag_id"] != "reprocess_files" for s in detail["steps"])  # no task log to link to


def test_api_docs_are_served_without_a_cdn(client, admin) -> None:
    docs = client.get("/filegate/docs", headers=admin)
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    sources = [part.split('"')[1] for part in docs.text.split('src=')[1:]]
    hrefs = [part.split('"')[1] for part in docs.text.split('href=')[1:]]
    assert sources == ["static/swagger/swagger-ui-bundle.js", "static/docs.js"]
    assert not [url for url in sources + hrefs if "//" in url]  # nothing from another host
    bundle = client.get("/filegate/static/swagger/swagger-ui-bundle.js", headers=admin)
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 500_000
    assert client.get("/filegate/static/swagger/swagger-ui.css", headers=admin).status_code == 200
    assert client.get("/filegate/static/swagger/redoc.standalone.js", headers=admin).status_code in (404, 422)
    assert client.get("/filegate/static/swagger/index.js", headers=admin).status_code == 404
    assert "SwaggerUIBundle" in client.get("/filegate/static/docs.js", headers=admin).text


def test_deliveries_give_the_calendar_days_feeds_and_slots(client, admin, local_stack) -> None:
    """stock_levels (its contract expects a closing count every business day at 06:00 Berlin time): a missed
    slot and a late one whose file came three hours after it, on two local days of the calendar."""
    from datetime import UTC, date, datetime, time, timedelta

    store = StatusStore.connect(local_stack.db_url)
    days = [date(2026, 11, 2), date(2026, 11, 3)]  # Monday, Tuesday: 06:00 CET is 05:00 UTC
    rows = [{"feed": "stock_levels", "expected_at": datetime.combine(d, time(5), UTC),
             "deadline_at": datetime.combine(d, time(6), UTC), "local_day": d,
             "pattern": f"stock_{d}_close.tsv", "files_expected": 1} for d in days]
    store.slots.add(rows)
    late_file = store.register(feed="stock_levels", source="s3", raw_key="raw/stock_levels/2026/11/03/late.tsv",
                               name="stock_2026-11-03_close.tsv", sha256="d" * 64, size_bytes=5, actor=ACTOR)
    store.slots.attach(rows[1], late_file.file_id, rows[1]["expected_at"] + timedelta(hours=3))
    for slot in store.slots.open_slots("stock_levels"):
        if slot["local_day"] == days[0]:
            store.slots.set_state(slot["id"], "missed", satisfied_at=None, delay_seconds=None)
        elif slot["local_day"] == days[1]:
            store.slots.set_state(slot["id"], "late", satisfied_at=slot["expected_at"] + timedelta(hours=3),
                                  delay_seconds=10_800)
    response = client.get("/filegate/api/deliveries", params={"since": "2026-11-02", "until": "2026-11-04",
                                                               "feed": "stock_levels"}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    [feed] = body["feeds"]
    assert (feed["feed"], feed["timezone"], feed["schedule"]) == ("stock_levels", "Europe/Berlin",
                                                                  "mon, tue, wed, thu, fri at 06:00")
    by_day = {s["local_day"]: s for s in body["slots"]}
    assert by_day["2026-11-02"]["state"] == "missed" and by_day["2026-11-02"]["local_time"] == "06:00 CET"
    assert by_day["2026-11-03"]["state"] == "late" and by_day["2026-11-03"]["delay_seconds"] == 10_800
    assert [f["name"] for f in by_day["2026-11-03"]["files"]] == ["stock_2026-11-03_close.tsv"]
    bad = client.get("/filegate/api/deliveries", params={"since": "2026-11-05", "until": "2026-11-01"}, headers=admin)
    assert bad.status_code == 422 and "is after" in bad.text
    spec = client.get("/filegate/openapi.json", headers=admin).json()
    assert "/api/deliveries" in spec["paths"]
    assert "DeliverySlot" in spec["components"]["schemas"]
