"""A file whose run is gone (its task SIGKILLed mid-delivery, as when MWAA scales a worker away) does not stay
`processing` forever: once the dead run's claim lease runs out, the next run of the feed takes it (exactly one
run: never while the lease lives), processes it again from raw/ and ends it `processed`, with no duplicate row in
the Postgres destination and no record posted twice. reprocess_files can release such a file explicitly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import boto3
import psycopg
import pytest
import requests

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget
from filegate.ingestion.arrivals import register_arrivals
from filegate.pipeline.reprocess import parse_request, plan, requeue
from filegate.pipeline.steps import deliver_files, process_files
from filegate.status import Actor, Status, StatusStore
from filegate.status.store import ClaimLost

pytestmark = pytest.mark.integration
ROWS, BATCH, LEASE_S = 60, 5, 2
VICTIM = """
import json, sys
import boto3
from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget
from filegate.pipeline.steps import deliver_files, process_files
from filegate.status import Actor, StatusStore
db_url, moto, bucket, stub, contract_json = sys.argv[1:]
contract = Contract.model_validate(json.loads(contract_json))
store = StatusStore(db_url)
s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
run = dict(dag_id="process_" + contract.name, run_id="run-killed", try_number=1)
report = process_files(store, s3, bucket, contract, Actor(task_id="process_files", **run), last_try=False)
print("processed", report.done, flush=True)
target = ApiTarget(base_url=stub, endpoint=contract.destinations.api.endpoint, concurrency=1)
deliver_files(store, s3, bucket, contract, Actor(task_id="deliver_records", **run), report.done, target)
print("delivered", flush=True)
"""


@pytest.fixture
def stale(local_stack, monkeypatch):
    monkeypatch.setenv("FILEGATE_DB_URL", local_stack.db_url)  # the Postgres destination's DSN
    name = f"stale_{uuid.uuid4().hex[:8]}"
    contract = Contract.model_validate({
        "name": name, "description": "stale claim test",
        "schema": {"columns": [{"name": "n", "type": "int", "nullable": False}]},
        "destinations": {"postgres": {"table": name, "natural_key": ["n"]},
                         "api": {"endpoint": f"/v1/{name}", "batch_size": BATCH, "concurrency": 1,
                                 "payload": {"n": "n"}}},
    })
    store = StatusStore.connect(local_stack.db_url)
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    return contract, store, s3


def _register(local_stack, contract: Contract, store: StatusStore, s3) -> int:
    key = f"{contract.raw_prefix}2026/12/03/f.csv"
    body = "n\n" + "\n".join(str(n) for n in range(ROWS)) + "\n"
    s3.put_object(Bucket=local_stack.bucket, Key=key, Body=body.encode())
    actor = Actor(dag_id=f"process_{contract.name}", run_id="run-register", task_id="register_arrivals")
    [file_id] = register_arrivals(store, s3, local_stack.bucket, contract, actor)
    return file_id


def test_a_killed_runs_file_is_taken_once_by_the_next_run_and_ends_processed_once(stale, local_stack) -> None:
    contract, store, s3 = stale
    stub = local_stack.stub_url
    requests.post(f"{stub}/_stub/reset", timeout=5).raise_for_status()
    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 150}, timeout=5).raise_for_status()
    file_id = _register(local_stack, contract, store, s3)

    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, local_stack.db_url, local_stack.moto_url, local_stack.bucket, stub,
         json.dumps(contract.model_dump(mode="json", by_alias=True))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **local_stack.env, "FILEGATE_CLAIM_LEASE_S": str(LEASE_S)})
    deadline = time.monotonic() + 90
    while len(store.reads.acknowledged_keys(file_id)) < 3:  # killed mid-delivery, Postgres already loaded
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the victim never got to deliver"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 0}, timeout=5).raise_for_status()
    assert store.reads.get_file(file_id)["status"] == Status.PROCESSING

    nxt = {"dag_id": f"process_{contract.name}", "run_id": "run-next", "try_number": 1}
    # While the dead run's lease lives, nobody else may take the file.
    assert process_files(store, s3, local_stack.bucket, contract, Actor(task_id="process_files", **nxt)).done == []
    while store.reads.get_file(file_id)["lease_expires_at"] >= datetime.now(UTC):
        time.sleep(0.2)
    report = process_files(store, s3, local_stack.bucket, contract, Actor(task_id="process_files", **nxt))
    assert report.done == [file_id]
    target = ApiTarget(base_url=stub, endpoint=contract.destinations.api.endpoint, concurrency=1)
    delivered = deliver_files(store, s3, local_stack.bucket, contract, Actor(task_id="deliver_records", **nxt),
                              report.done, target)
    assert delivered.done == [file_id]

    row = store.reads.get_file(file_id)
    assert row["status"] == Status.PROCESSED and row["last_run_id"] == "run-next"
    history = store.reads.history(file_id)
    assert [(e["from_status"], e["to_status"]) for e in history][-4:] == [
        ("queued", "processing"), ("processing", "queued"), ("queued", "processing"), ("processing", "processed")]
    released = history[-3]
    assert released["message"].startswith("claim of run run-killed (process_")
    assert "expired at" in released["message"] and "queued again" in released["message"]
    assert released["run_id"] == "run-next"

    with psycopg.connect(local_stack.db_url) as conn:  # the Postgres destination: every row once
        count, distinct = conn.execute(f"SELECT count(*), count(DISTINCT n) FROM feeds.{contract.name}").fetchone()
    assert count == distinct == ROWS
    posted = requests.get(f"{stub}/_stub/requests", params={"path": f"/v1/{contract.name}"}, timeout=5).json()
    accepted = [r for r in posted if r["outcome"] == "accepted"]
    assert sorted(rec["n"] for r in accepted for rec in r["body"]) == list(range(ROWS))  # each record once
    assert set(Counter(r["idempotency_key"] for r in accepted).values()) == {1}


def test_a_run_whose_claim_was_taken_over_cannot_finish_the_file(stale, local_stack) -> None:
    contract, store, s3 = stale
    file_id = _register(local_stack, contract, store, s3)
    slow = Actor(dag_id="process_x", run_id="run-slow", task_id="process_files", try_number=1)
    fast = Actor(dag_id="process_x", run_id="run-fast", task_id="process_files", try_number=1)
    assert [r["id"] for r in store.claim(slow, file_ids=[file_id], lease_s=0.3)] == [file_id]
    assert store.claim(fast, file_ids=[file_id]) == []  # the lease lives: one holder
    time.sleep(0.5)
    assert [r["id"] for r in store.claim(fast, file_ids=[file_id])] == [file_id]
    assert store.renew_leases([file_id], slow) == []
    with pytest.raises(ClaimLost, match="run run-fast holds it now"):
        store.transition(file_id, Status.FAILED, slow, error="finished late")
    store.transition(file_id, Status.QUARANTINED, fast, error="the new holder decides")
    assert store.reads.get_file(file_id)["status"] == Status.QUARANTINED


def test_reprocess_files_releases_a_processing_file_only_when_its_run_is_gone(stale, local_stack) -> None:
    contract, store, s3 = stale
    file_id = _register(local_stack, contract, store, s3)
    dead = Actor(dag_id=f"process_{contract.name}", run_id="run-dead", task_id="process_files", try_number=1)
    store.claim(dead, file_ids=[file_id], lease_s=60)
    request = parse_request({"file_ids": [file_id], "statuses": ["processing"]}, [contract.name])
    with pytest.raises(ValueError, match="is held by run run-dead until"):
        plan(store, request, [contract.name])
    with psycopg.connect(local_stack.db_url) as conn:  # the run died a while ago: its lease ran out
        conn.execute("UPDATE file SET lease_expires_at = now() - interval '1 minute' WHERE id = %s", (file_id,))
    chosen = plan(store, request, [contract.name])
    operator = Actor(dag_id="reprocess_files", run_id="run-reprocess", task_id="requeue_files", try_number=1)
    assert requeue(store, chosen.as_dicts(), operator) == [file_id]
    assert [r["id"] for r in store.claim(operator, file_ids=[file_id])] == [file_id]
    last = store.reads.history(file_id)[-2]
    assert (last["from_status"], last["to_status"], last["dag_id"]) == ("processing", "queued", "reprocess_files")
    assert last["message"].startswith("claim of run run-dead")
