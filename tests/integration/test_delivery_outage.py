"""An API down for longer than a task's in-process retries is survived on its own: a process_<feed> run under
dag.test() (Airflow's own task retries, with their delays) delivers the file once the stub API is back, each
record exactly once in the API's own store, and the file's history says it waited.

FILEGATE_TEST_OUTAGE_S sizes the outage, which starts at the delivery's first request (default 100 s: before
delivery retries outlasted an outage, the three tries of a deliver task started within about 90 s of its first
request, so the file failed; `make chaos` uses 300 s)."""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from airflow_runs import migrated_airflow_env, run_dag
from psycopg.rows import dict_row

from filegate.delivery.client import idempotency_key

pytestmark = pytest.mark.integration
FEEDS = Path(__file__).resolve().parents[2] / "include" / "feeds"
OUTAGE_S = float(os.environ.get("FILEGATE_TEST_OUTAGE_S") or 100)
ROWS, BATCH = 35, 10


@pytest.fixture
def outage_feed(local_stack, tmp_path_factory):
    """A feed of its own (own raw/ prefix and API path), so other tests' files never mix in."""
    name = f"outage_{uuid.uuid4().hex[:8]}"
    feeds = tmp_path_factory.mktemp("outage_feeds")
    for contract in FEEDS.glob("*.yaml"):  # the project's feeds too: other DAG files name them
        (feeds / contract.name).write_bytes(contract.read_bytes())
    (feeds / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name, "description": "API outage test feed", "owner": "data-engineering",
        "source": {"kind": "s3", "pattern": "*.csv"}, "format": {"type": "csv"},
        "schema": {"columns": [{"name": "n", "type": "int", "nullable": False}]},
        "destinations": {"api": {"endpoint": f"/v1/{name}", "batch_size": BATCH, "concurrency": 2,
                                 "payload": {"n": "n"}}},
    }))
    env = migrated_airflow_env(local_stack.env, tmp_path_factory.mktemp("airflow_outage"),
                               FILEGATE_FEEDS_DIR=str(feeds),
                               # Short delays between the deliver task's tries keep the test near the outage's length.
                               FILEGATE_DELIVERY_RETRY_DELAY_S="5", FILEGATE_DELIVERY_MAX_RETRY_DELAY_S="15")
    return name, env


def test_a_file_comes_through_an_api_outage_on_its_own(local_stack, outage_feed) -> None:
    import boto3

    name, env = outage_feed
    stub = local_stack.stub_url
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    base = random.randrange(10**6, 10**9)
    numbers = list(range(base, base + ROWS))
    key = f"raw/{name}/2026/12/03/outage.csv"
    s3.put_object(Bucket=local_stack.bucket, Key=key, Body=("n\n" + "\n".join(map(str, numbers)) + "\n").encode())

    requests.post(f"{stub}/_stub/faults", json={"outage_on_next_request_s": OUTAGE_S}, timeout=5).raise_for_status()
    try:
        outcome = run_dag(env, f"process_{name}")
    finally:
        requests.post(f"{stub}/_stub/faults", json={"outage_for_s": 0}, timeout=5).raise_for_status()
    posted = requests.get(f"{stub}/_stub/requests", params={"path": f"/v1/{name}"}, timeout=5).json()

    with psycopg.connect(local_stack.db_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM file WHERE raw_key = %s", (key,)).fetchone()
        events = conn.execute("SELECT * FROM file_event WHERE file_id = %s ORDER BY id", (row["id"],)).fetchall()
    assert outcome["state"] == "success", outcome["output"][-3000:]
    assert row["status"] == "processed", row["error"]
    failed = [datetime.fromisoformat(r["received_at"]) for r in posted if r["outcome"] == "outage 503"]
    assert (max(failed) - min(failed)).total_seconds() >= OUTAGE_S - 30  # tries all through the outage

    waiting = [e for e in events if e["message"] and e["message"].startswith("delivery waiting: API unavailable")]
    assert len(waiting) >= 2, [e["message"] for e in events]
    assert all(e["from_status"] == e["to_status"] == "processing" for e in waiting)
    assert all(e["task_id"] == "deliver_records" for e in waiting)
    assert "HTTP 503" in waiting[0]["message"] and ", retry 2 at about " in waiting[0]["message"]
    assert "gives up at" in waiting[0]["message"]
    assert [e["try_number"] for e in waiting] == list(range(1, len(waiting) + 1))
    assert [e["to_status"] for e in events if e["from_status"] != e["to_status"]] == [
        "pending", "downloaded", "queued", "processing", "processed"]
    assert "after the API was unavailable from" in events[-1]["message"]

    # The API's own store: every record exactly once, under the file's idempotency keys.
    accepted = [r for r in posted if r["outcome"] == "accepted"]
    assert sorted(record["n"] for r in accepted for record in r["body"]) == numbers
    keys = Counter(r["idempotency_key"] for r in accepted)
    batches = -(-ROWS // BATCH)
    assert set(keys) == {idempotency_key(row["job_key"], n, BATCH) for n in range(1, batches + 1)}
    assert set(keys.values()) == {1}
