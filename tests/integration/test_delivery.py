"""Batched, idempotent API delivery against the stub API: faults injected, every record delivered once."""

from __future__ import annotations

import uuid

import pytest
import requests

from filegate.delivery.client import ApiTarget, deliver_records
from filegate.status import Actor, StatusStore

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(local_stack) -> str:
    requests.post(f"{local_stack.stub_url}/_stub/reset", timeout=5).raise_for_status()
    return local_stack.stub_url


@pytest.fixture
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


@pytest.fixture
def file_row(store: StatusStore) -> dict:
    feed = f"feed_{uuid.uuid4().hex[:8]}"
    sha = uuid.uuid4().hex * 2
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/x.csv", name="x.csv", sha256=sha,
                         size_bytes=1, actor=Actor())
    return {"id": reg.file_id, "sha256": sha}


def batches(n_records: int, size: int):
    records = [{"id": i} for i in range(n_records)]
    return [records[i:i + size] for i in range(0, n_records, size)]


def faults(stub: str, **spec) -> None:
    requests.post(f"{stub}/_stub/faults", json=spec, timeout=5).raise_for_status()


def stats(stub: str) -> dict:
    return requests.get(f"{stub}/_stub/stats", timeout=5).json()


def deliver(stub, store, file_row, n=95, size=10, **target):
    return deliver_records(batches(n, size), ApiTarget(base_url=stub, endpoint="/v1/things", backoff_s=0.05,
                                                       **target),
                           file_id=file_row["id"], sha256=file_row["sha256"], batch_size=size,
                           acknowledged=store.acknowledged_keys(file_row["id"]), recorder=store)


def test_every_record_once_despite_5xx_429_and_resets(stub, store, file_row) -> None:
    faults(stub, fail_next=3, fail_status=500)
    result = deliver(stub, store, file_row, concurrency=1)
    assert result.ok and result.posted == 10
    faults(stub, fail_next=2, fail_status=429, retry_after=0)
    faults(stub, reset_next=1)
    again = deliver(stub, store, file_row)  # a re-run: everything already acknowledged
    assert (again.posted, again.skipped) == (0, 10)
    assert stats(stub)["records_received"] == 95
    calls = store.api_calls(file_row["id"])
    assert sum(c["acknowledged"] for c in calls) == 10
    failed = [c for c in calls if not c["acknowledged"]]
    assert len(failed) == 3 and all(c["status_code"] == 500 and c["error"] for c in failed)
    assert all(c["latency_ms"] is not None and c["idempotency_key"].startswith("fg-") for c in calls)


def test_client_errors_are_not_retried_and_name_the_batches(stub, store, file_row) -> None:
    faults(stub, fail_next=1, fail_status=400)
    result = deliver(stub, store, file_row, n=30, concurrency=1)
    assert list(result.failed) == [1] and "HTTP 400" in result.failed[1]
    assert "1 failed: #1 (HTTP 400" in result.describe()
    rerun = deliver(stub, store, file_row, n=30)
    assert (rerun.posted, rerun.skipped) == (1, 2)
    assert stats(stub)["records_received"] == 30


def test_timeouts_are_retried(stub, store, file_row) -> None:
    faults(stub, timeout_next=1)
    result = deliver(stub, store, file_row, n=10, timeout_s=1.0, concurrency=1)
    assert result.ok
    errors = [c["error"] for c in store.api_calls(file_row["id"]) if c["error"]]
    assert len(errors) == 1 and "Timeout" in errors[0]
    assert stats(stub)["records_received"] == 10
