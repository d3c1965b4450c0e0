"""Batched, idempotent API delivery against the stub API: faults injected, every record delivered exactly once
(by the stub's own count), every attempt an `api_call` row."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from filegate.delivery.client import ApiTarget, deliver_records
from filegate.delivery.payload import iter_payload_batches
from filegate.status import Actor, StatusStore
from filegate_stack.config import free_port
from filegate_stack.stub_api import build_server

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(local_stack) -> str:
    requests.post(f"{local_stack.stub_url}/_stub/reset", timeout=5).raise_for_status()
    return local_stack.stub_url


@pytest.fixture
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


def new_file(store: StatusStore) -> dict:
    feed = f"feed_{uuid.uuid4().hex[:8]}"
    sha = uuid.uuid4().hex * 2
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/x.csv", name="x.csv", sha256=sha,
                         size_bytes=1, actor=Actor())
    return {"id": reg.file_id, "sha256": sha}


@pytest.fixture
def file_row(store: StatusStore) -> dict:
    return new_file(store)


def batches(n_records: int, size: int, start: int = 0):
    for i in range(start, start + n_records, size):
        yield [{"id": j} for j in range(i, min(i + size, start + n_records))]


def faults(stub: str, **spec) -> None:
    requests.post(f"{stub}/_stub/faults", json=spec, timeout=5).raise_for_status()


def stats(stub: str) -> dict:
    return requests.get(f"{stub}/_stub/stats", timeout=5).json()


def received(stub: str, path: str = "/v1/things") -> list[dict]:
    return requests.get(f"{stub}/_stub/requests", params={"path": path}, timeout=5).json()


def deliver(stub, store, file_row, n=95, size=10, path="/v1/things", start=0, **target):
    target.setdefault("backoff_s", 0.05)
    return deliver_records(batches(n, size, start), ApiTarget(base_url=stub, endpoint=path, **target),
                           file_id=file_row["id"], sha256=file_row["sha256"], batch_size=size,
                           acknowledged=store.reads.acknowledged_keys(file_row["id"]), recorder=store)


def assert_complete_rows(calls: list[dict], batches_expected: int) -> None:
    """One acknowledged row per batch, attempts numbered 1..n, every row with its outcome and latency."""
    by_batch = defaultdict(list)
    for call in calls:
        by_batch[call["batch_no"]].append(call)
        assert call["latency_ms"] is not None and call["latency_ms"] >= 0
        assert call["idempotency_key"].startswith("fg-") and call["url"].endswith("/v1/things")
        if call["acknowledged"]:
            assert 200 <= call["status_code"] < 300 and call["error"] is None and call["response_excerpt"]
        else:
            assert call["error"], call
            if call["status_code"] is not None:
                assert call["response_excerpt"]
    assert sorted(by_batch) == list(range(1, batches_expected + 1))
    for rows in by_batch.values():
        assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
        assert [r["acknowledged"] for r in rows] == [False] * (len(rows) - 1) + [True]
        assert len({r["idempotency_key"] for r in rows}) == 1


def test_every_record_once_despite_latency_5xx_timeouts_and_resets(stub, store, file_row) -> None:
    faults(stub, latency_ms=20, reset_next=2, timeout_next=2, timeout_s=3, fail_next=3, fail_status=500)
    result = deliver(stub, store, file_row, n=195, size=10, timeout_s=1.0, concurrency=4)
    assert result.ok and (result.posted, result.records_posted) == (20, 195)
    assert stats(stub)["records_received"] == 195
    outcomes = Counter(r["outcome"] for r in received(stub))
    assert outcomes == {"accepted": 20, "reset": 2, "timeout": 2, "fail 500": 3}
    accepted = Counter(r["idempotency_key"] for r in received(stub) if r["outcome"] == "accepted")
    assert len(accepted) == 20 and set(accepted.values()) == {1}
    calls = store.reads.api_calls(file_row["id"])
    assert_complete_rows(calls, 20)
    errors = Counter(c["error"].split(":")[0] for c in calls if c["error"])
    assert errors["HTTP 500 Internal Server Error"] == 3 and errors["ReadTimeout"] == 2
    assert errors["ConnectionError"] == 2
    # A re-run finds every batch acknowledged and posts nothing.
    again = deliver(stub, store, file_row, n=195, size=10)
    assert (again.posted, again.skipped) == (0, 20)
    assert stats(stub)["records_received"] == 195 and len(received(stub)) == 27


def test_429_honours_retry_after(stub, store, file_row) -> None:
    faults(stub, fail_next=2, fail_status=429, retry_after=1)
    started = time.monotonic()
    result = deliver(stub, store, file_row, n=10, size=10, concurrency=1, backoff_s=0.01)
    assert result.ok and time.monotonic() - started >= 2.0  # two waits of Retry-After: 1, not 2 x 10 ms
    calls = store.reads.api_calls(file_row["id"])
    assert [c["status_code"] for c in calls] == [429, 429, 201]
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert stats(stub)["records_received"] == 10


def test_client_errors_are_not_retried_and_a_rerun_posts_only_what_is_missing(stub, store, file_row) -> None:
    faults(stub, fail_next=1, fail_status=400)
    result = deliver(stub, store, file_row, n=30, concurrency=1)
    assert list(result.failed) == [1] and "HTTP 400" in result.failed[1] and result.refused == {1}
    assert not result.worth_retrying
    assert "1 failed: #1 (HTTP 400 Bad Request" in result.describe()
    first_keys = {r["idempotency_key"] for r in received(stub)}
    rerun = deliver(stub, store, file_row, n=30)
    assert (rerun.posted, rerun.skipped) == (1, 2)
    rerun_keys = [r["idempotency_key"] for r in received(stub)][len(first_keys):]
    first_batch = [r["idempotency_key"] for r in store.reads.api_calls(file_row["id"]) if r["batch_no"] == 1]
    assert rerun_keys == first_batch[-1:]
    assert stats(stub)["records_received"] == 30


def test_a_refusing_api_is_not_hammered(stub, store, file_row) -> None:
    faults(stub, fail_next=1000, fail_status=401)
    result = deliver(stub, store, file_row, n=1000, size=10, concurrency=2, stop_after_failed_batches=4)
    assert result.not_attempted_from is not None and len(result.failed) < 10
    assert "not attempted" in result.describe()
    assert len(received(stub)) == len(result.failed)


def test_rate_limit_caps_requests_per_second(stub, store, file_row) -> None:
    started = time.monotonic()
    result = deliver(stub, store, file_row, n=300, size=10, concurrency=8, rate_limit_per_s=10)
    elapsed = time.monotonic() - started
    assert result.ok and result.posted == 30
    assert elapsed >= 1.9, elapsed  # 10 at once (the burst), then 20 more at 10/s
    stamps = sorted(r["received_at"] for r in received(stub))
    assert len(stamps) == 30


def test_template_and_envelope_shape_the_body(stub, store, file_row, tmp_path) -> None:
    pq.write_table(pa.table({"order_id": [1, 2, 3], "email": ["a@x.io", "b@x.io", "c@x.io"]}),
                   tmp_path / "p.parquet")
    template = {"id": "order_id", "customer": {"email": "email", "tier": {"$const": "std"}},
                "source": {"$meta": "file_name"}}
    result = deliver_records(
        iter_payload_batches([tmp_path / "p.parquet"], template, 2, {"file_name": "orders.csv"}),
        ApiTarget(base_url=stub, endpoint="/v1/things", envelope="records"), file_id=file_row["id"],
        sha256=file_row["sha256"], batch_size=2, acknowledged=set(), recorder=store)
    assert result.ok and result.records_posted == 3
    bodies = sorted((r["body"] for r in received(stub)), key=lambda b: b["records"][0]["id"])
    assert bodies[0] == {"records": [
        {"id": 1, "customer": {"email": "a@x.io", "tier": "std"}, "source": "orders.csv"},
        {"id": 2, "customer": {"email": "b@x.io", "tier": "std"}, "source": "orders.csv"}]}
    assert stats(stub)["records_received"] == 3


@pytest.fixture
def secured_stub():
    token = f"tok-{uuid.uuid4().hex}"
    port = free_port()
    server, _state = build_server(port, None, token)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", token
    server.shutdown()
    server.server_close()


def test_bearer_token_never_in_api_call_rows_or_logs(secured_stub, store, caplog) -> None:
    url, token = secured_stub
    caplog.set_level(logging.DEBUG)
    wrong = new_file(store)
    refused = deliver(url, store, wrong, n=20, headers={"Authorization": f"Bearer {token}-wrong"})
    assert refused.refused == set(refused.failed) and "HTTP 401" in next(iter(refused.failed.values()))
    right = new_file(store)
    accepted = deliver(url, store, right, n=20, headers={"Authorization": f"Bearer {token}"})
    assert accepted.ok and accepted.posted == 2
    rows = store.reads.api_calls(wrong["id"]) + store.reads.api_calls(right["id"])
    assert rows and token not in repr(rows)
    assert token not in caplog.text and "Authorization" not in caplog.text
