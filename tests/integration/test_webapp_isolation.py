"""No request can crash the api-server (issue 18): the Filegate app runs inside Airflow's api-server, so no
request may import or run Arrow there. The aggregates' Parquet fallback decodes in a bounded child process; its
crash, timeout or memory overrun is one clean HTTP error, and the app keeps serving."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from webapp_env import airflow_app, token

from filegate.reporting import aggregates
from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
FEED = "webiso"  # files of a feed no contract defines: no processing run of another test meets them
OUTPUT = "orders"  # a feed with a contract, no feeds.orders… table: aggregates take the Parquet fallback
ACTOR = Actor(dag_id=f"process_{FEED}", run_id="manual__2026-11-22T10:00:00+00:00", task_id="process_files",
              try_number=1)
REPORT_DAY = date(2026, 3, 4)
SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]
THREADS, CALLS = 8, 50


@pytest.fixture(scope="module")
def s3(local_stack):
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def data(local_stack, s3):
    """Files with history and quality, three Parquet outputs of `orders`, one daily report."""
    from filegate.reporting.archive import publish_report
    from filegate.reporting.daily import compute_daily_report
    from filegate.status.queries import StatusQueries

    store = StatusStore.connect(local_stack.db_url)
    ids = []
    for n in range(12):
        reg = store.register(feed=FEED, source="s3", raw_key=f"raw/{FEED}/2026/11/22/f_{n:02d}.csv",
                             name=f"f_{n:02d}.csv", sha256=f"{FEED}-{n:060d}"[-64:], size_bytes=10 + n, actor=ACTOR)
        store.queue([reg.file_id], ACTOR)
        store.claim(ACTOR, feed=FEED, file_ids=[reg.file_id])
        store.record_quality(reg.file_id, rows_total=5, rows_valid=4, rows_rejected=1, inferred_schema={},
                             column_stats={}, issues=[])
        store.transition(reg.file_id, Status.PROCESSED if n % 2 else Status.FAILED, ACTOR,
                         error=None if n % 2 else f"bad file {n}")
        ids.append(reg.file_id)
    keys = [f"processed/{OUTPUT}/zz_isolation/part-{n}.parquet" for n in range(3)]
    for n, key in enumerate(keys):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"seller_id": [f"S{i % 5}" for i in range(400)], "part": [n] * 400,
                                 "total": [float(i) for i in range(400)]}), buffer)
        s3.put_object(Bucket=local_stack.bucket, Key=key, Body=buffer.getvalue())
    publish_report(s3, local_stack.bucket, compute_daily_report(StatusQueries(local_stack.db_url), REPORT_DAY))
    aggregates.clear_cache()
    yield ids
    for key in keys:
        s3.delete_object(Bucket=local_stack.bucket, Key=key)
    aggregates.clear_cache()


@pytest.fixture(scope="module")
def app(local_stack, tmp_path_factory):
    with airflow_app(local_stack.env, tmp_path_factory.mktemp("airflow_isolation")) as app:
        yield app


@pytest.fixture(scope="module")
def admin(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(TestClient(app), 'admin')}"}


def data_routes(ids: list[int], k: int) -> list[str]:
    """Every data route, the k-th variant: aggregates pages vary so the Parquet fallback spawns readers."""
    file_id = ids[k % len(ids)]
    return [
        f"/filegate/api/files?feed={FEED}&limit=5",
        f"/filegate/api/files/{file_id}",
        f"/filegate/api/files/{file_id}/history",
        f"/filegate/api/files/{file_id}/quality",
        "/filegate/api/counts",
        f"/filegate/api/errors?feed={FEED}",
        f"/filegate/api/feeds/{OUTPUT}/summary",
        f"/filegate/api/feeds/{OUTPUT}/aggregates?limit=5&offset={k % 25}",
        f"/filegate/api/feeds/{OUTPUT}/aggregates?where=seller_id:S{k % 5}&limit=3",
        f"/filegate/api/feeds/{OUTPUT}/aggregates?where=nope:1",  # 422 from the reader
        "/filegate/api/files/2147483000",  # 404
        "/filegate/api/feeds",
        "/filegate/api/reports",
        f"/filegate/api/reports/{REPORT_DAY}",
    ]


def test_every_data_route_hammered_concurrently_answers_json(app, admin, data) -> None:
    statuses: Counter[str] = Counter()
    bad: list[str] = []
    spawned = Counter[str]()
    run = aggregates._runner.run

    def counted(*args, **kwargs):
        spawned["readers"] += 1
        return run(*args, **kwargs)

    def worker(n: int) -> None:
        client = TestClient(app)
        for call in range(CALLS):
            routes = data_routes(data, n * CALLS + call)
            path = routes[(n + call) % len(routes)]
            response = client.get(path, headers=admin)
            statuses[f"{path.split('?')[0].rsplit('/', 1)[-1]} {response.status_code}"] += 1
            try:
                response.json()
            except ValueError:
                bad.append(f"{path}: not JSON: {response.text[:200]}")
            if not (200 <= response.status_code < 500 and "json" in response.headers.get("content-type", "")):
                bad.append(f"{path}: {response.status_code} {response.text[:300]}")

    aggregates.clear_cache()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aggregates._runner, "run", counted)
        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    print(f"\n{THREADS * CALLS} calls in {elapsed:.1f} s, {spawned['readers']} reader children; "
          f"{dict(sorted(statuses.items()))}")
    assert bad == []
    assert sum(statuses.values()) == THREADS * CALLS
    assert spawned["readers"] > 0 and any(k.startswith("aggregates 200") for k in statuses)


def parquet_rows(s3, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return sum(pq.ParquetFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).metadata.num_rows
               for key in keys)


def test_a_reader_crash_timeout_or_memory_overrun_is_one_clean_error(app, admin, data, s3, local_stack,
                                                                     monkeypatch) -> None:
    client = TestClient(app)
    path = f"/filegate/api/feeds/{OUTPUT}/aggregates"
    aggregates.clear_cache()
    monkeypatch.setattr(aggregates, "READER_COMMAND", SEGFAULT)
    crashed = client.get(path, params={"limit": 7}, headers=admin)
    assert crashed.status_code == 502 and "crashed (SIGSEGV)" in crashed.json()["detail"]
    assert client.get(f"/filegate/api/files?feed={FEED}", headers=admin).status_code == 200  # still serving

    monkeypatch.setattr(aggregates, "READER_COMMAND", [sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(aggregates, "READER_TIMEOUT_S", 1.0)
    timed_out = client.get(path, params={"limit": 8}, headers=admin)
    assert timed_out.status_code == 504 and "longer than 1 s" in timed_out.json()["detail"]

    monkeypatch.setattr(aggregates, "READER_COMMAND", None)
    monkeypatch.setattr(aggregates, "READER_TIMEOUT_S", 60.0)
    monkeypatch.setattr(aggregates, "READER_MAX_BYTES", 100 << 20)  # less than Arrow itself needs
    too_big = client.get(path, params={"limit": 9}, headers=admin)
    assert too_big.status_code == 413 and "100 MB of memory" in too_big.json()["detail"]

    monkeypatch.setattr(aggregates, "READER_MAX_BYTES", 1 << 30)
    served = client.get(path, params={"limit": 10}, headers=admin)
    # Other tests of the session may have published orders too: the answer counts every Parquet row of the feed.
    assert served.status_code == 200 and len(served.json()["rows"]) == 10
    assert served.json()["total"] == parquet_rows(s3, local_stack.bucket, f"processed/{OUTPUT}/") >= 1200


SCRIPT = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from webapp_env import airflow_app, token

stack_env, home, paths = json.loads(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
with airflow_app(stack_env, home) as app:
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token(client, 'admin')}"}
    statuses = {path: client.get(path, headers=headers).status_code for path in paths}
    upload = client.post("/filegate/api/feeds/orders/files", content=b"x",
                         headers={**headers, "Content-Type": "text/plain"})
    statuses["upload"] = upload.status_code
    print(json.dumps({"statuses": statuses,
                      "heavy": sorted(m for m in ("pyarrow", "pandas") if m in sys.modules)}))
"""


def test_the_app_and_every_contract_loading_route_stay_arrow_free(local_stack, data, tmp_path) -> None:
    """In a fresh interpreter (other tests import pyarrow): import the app, call the routes that load contracts
    and the aggregates Parquet fallback; pyarrow is never imported in the api-server's process."""
    paths = sorted(set(data_routes(data, 0) + data_routes(data, 1)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(local_stack.env), str(tmp_path),
                           json.dumps(paths)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["statuses"][f"/filegate/api/feeds/{OUTPUT}/aggregates?limit=5&offset=0"] == 200
    assert all(code < 500 for code in answer["statuses"].values()), answer["statuses"]
    assert answer["heavy"] == [], answer
