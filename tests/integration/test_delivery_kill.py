"""A delivery killed mid-post (SIGKILL, as when a worker dies) and run again delivers no record twice: the
acknowledged batches are skipped, and batches in flight at the kill carry the same idempotency key again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
import requests

from filegate.delivery.client import idempotency_key
from filegate.status import Actor, StatusStore

pytestmark = pytest.mark.integration
RECORDS, SIZE, CONCURRENCY = 400, 10, 2
WORKER = """
import json, sys
from filegate.delivery.client import ApiTarget, deliver_records
from filegate.status import StatusStore
db_url, stub, file_id, sha, n, size, concurrency = sys.argv[1:]
n, size, file_id = int(n), int(size), int(file_id)
store = StatusStore(db_url)
batches = ([{"id": j} for j in range(i, min(i + size, n))] for i in range(0, n, size))
result = deliver_records(batches, ApiTarget(base_url=stub, endpoint="/v1/killed", concurrency=int(concurrency)),
                         file_id=file_id, sha256=sha, batch_size=size,
                         acknowledged=store.reads.acknowledged_keys(file_id), recorder=store)
print(json.dumps({"posted": result.posted, "skipped": result.skipped, "ok": result.ok}))
"""


def run_worker(local_stack, file_row: dict) -> subprocess.Popen:
    args = [local_stack.db_url, local_stack.stub_url, str(file_row["id"]), file_row["sha256"], str(RECORDS), str(SIZE),
            str(CONCURRENCY)]
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **local_stack.env})


def test_killed_mid_post_then_rerun_delivers_each_record_once(local_stack) -> None:
    stub = local_stack.stub_url
    requests.post(f"{stub}/_stub/reset", timeout=5).raise_for_status()
    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 150}, timeout=5).raise_for_status()
    store = StatusStore.connect(local_stack.db_url)
    feed = f"feed_{uuid.uuid4().hex[:8]}"
    sha = uuid.uuid4().hex * 2
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/k.csv", name="k.csv", sha256=sha, size_bytes=1,
                         actor=Actor())
    file_row = {"id": reg.file_id, "sha256": sha}
    batches = RECORDS // SIZE

    victim = run_worker(local_stack, file_row)
    deadline = time.monotonic() + 60
    while len(store.reads.acknowledged_keys(reg.file_id)) < 8:
        assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
        assert time.monotonic() < deadline, "the delivery never got going"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    acked_before = store.reads.acknowledged_keys(reg.file_id)
    assert 8 <= len(acked_before) < batches

    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 0}, timeout=5).raise_for_status()
    rerun = run_worker(local_stack, file_row)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == {"posted": batches - len(acked_before), "skipped": len(acked_before), "ok": True}

    # The stub's own count: every record exactly once.
    stats = requests.get(f"{stub}/_stub/stats", timeout=5).json()
    assert stats["records_by_path"] == {"/v1/killed": RECORDS}
    posted = requests.get(f"{stub}/_stub/requests", params={"path": "/v1/killed"}, timeout=5).json()
    accepted = Counter(r["idempotency_key"] for r in posted if r["outcome"] == "accepted")
    expected_keys = {idempotency_key(sha, n, SIZE) for n in range(1, batches + 1)}
    assert set(accepted) == expected_keys and set(accepted.values()) == {1}
    ids = sorted(record["id"] for r in posted if r["outcome"] == "accepted" for record in r["body"])
    assert ids == list(range(RECORDS))

    # Raw requests vs acknowledged keys: the only extra requests are the batches in flight at the kill, posted
    # again with the same key and answered from the API's idempotency store (replayed), never accepted twice.
    calls = store.reads.api_calls(reg.file_id)
    acknowledged = Counter(c["idempotency_key"] for c in calls if c["acknowledged"])
    assert set(acknowledged) == expected_keys and set(acknowledged.values()) == {1}
    outcomes = Counter(r["outcome"] for r in posted)
    lost_in_kill = len(posted) - len(calls)
    assert 1 <= lost_in_kill <= CONCURRENCY  # killed mid-post: requests were in flight
    assert outcomes["replayed"] == lost_in_kill
    assert set(outcomes) <= {"accepted", "replayed", "conflict"}
