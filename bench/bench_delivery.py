"""API delivery throughput: 100,000 records posted to the stub API with 10 ms latency per request, batched and
concurrent (the contract defaults: 500 records per batch, 4 in flight), against sequential one-record-per-request
posting measured on a 2,000-record sample in the same run. Goal: ≥ 50x the baseline's records/s.

Both runs use the production path: Parquet → payload template → `deliver_records` → stub API, with every attempt
recorded as an `api_call` row in a real PostgreSQL (the embedded one, started here). The stub API runs as its own
process on a free port. Afterwards the stub's own count must show every record exactly once.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import requests

from filegate.delivery.client import ApiTarget, deliver_records
from filegate.delivery.payload import iter_payload_batches
from filegate.delivery.template import PayloadTemplate
from filegate.status.store import Actor, StatusStore
from filegate_stack.config import Ports, StackConfig, free_port
from filegate_stack.stack import Stack

RECORDS = 100_000
BASELINE_RECORDS = 2_000
LATENCY_MS = 10
BATCH_SIZE = 500
CONCURRENCY = 4
GOAL = 50.0
TEMPLATE = {"id": "order_id", "date": "order_date", "email": "email", "sku": "sku", "quantity": "quantity",
            "total": "line_total", "currency": "currency"}


def write_orders(path: Path, rows: int) -> None:
    ids = list(range(1, rows + 1))
    table = pa.table({
        "order_id": ids,
        "order_date": pa.array([f"2026-11-{1 + i % 28:02d}" for i in ids]).cast(pa.date32()),
        "email": [f"customer{i % 997}@example.com" for i in ids],
        "sku": [f"ABC-{i % 10_000:04d}" for i in ids],
        "quantity": [1 + i % 9 for i in ids],
        "line_total": pa.array([Decimal(i % 50_000) / 100 for i in ids], pa.decimal128(12, 2)),
        "currency": ["EUR"] * rows,
    })
    pq.write_table(table, path, compression="zstd")


def start_stub() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "filegate_stack.stub_api", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/_stub/stats", timeout=1).raise_for_status()
            return process, url
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the stub API did not start") from None
            time.sleep(0.1)


def register(store: StatusStore, name: str) -> tuple[int, str]:
    feed = f"bench_{uuid.uuid4().hex[:8]}"
    sha = uuid.uuid4().hex * 2
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/{name}", name=name, sha256=sha, size_bytes=0,
                         actor=Actor(task_id="bench"))
    return reg.file_id, sha


class MemoryRecorder:
    """For the second baseline: the same client with nothing written to a database."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def record_api_call(self, **row: object) -> None:
        self.rows.append(row)


def timed_delivery(store: StatusStore, stub: str, parquet: Path, *, endpoint: str, records: int, batch_size: int,
                   concurrency: int, recorder: MemoryRecorder | None = None) -> tuple[float, int]:
    file_id, sha = register(store, endpoint.strip("/").replace("/", "_"))
    template = PayloadTemplate.compile(TEMPLATE)
    batches = itertools.islice(iter_payload_batches([parquet], template, batch_size), -(-records // batch_size))
    target = ApiTarget(base_url=stub, endpoint=endpoint, concurrency=concurrency)
    started = time.perf_counter()
    result = deliver_records(batches, target, file_id=file_id, sha256=sha, batch_size=batch_size,
                             acknowledged=set(), recorder=recorder or store)
    elapsed = time.perf_counter() - started
    if not result.ok or result.records_posted != records:
        raise RuntimeError(f"delivery incomplete: {result.describe()}")
    rows = recorder.rows if recorder else store.reads.api_calls(file_id)
    acknowledged = sum(bool(c["acknowledged"]) for c in rows)
    if acknowledged != result.batches:
        raise RuntimeError(f"{acknowledged} acknowledged api_call rows for {result.batches} batches")
    return elapsed, result.batches


def main() -> bool:
    home = Path(tempfile.mkdtemp(prefix="filegate-bench-delivery-"))
    stack = Stack(home / "stack", Ports.free(), StackConfig(feeds=[], db_url=None, airflow_db_url=None))
    stub_process = None
    try:
        stack.start(["postgres"])
        store = StatusStore.connect(stack.env()["FILEGATE_DB_URL"])
        stub_process, stub = start_stub()
        requests.post(f"{stub}/_stub/faults", json={"latency_ms": LATENCY_MS}, timeout=5).raise_for_status()
        parquet = home / "orders.parquet"
        write_orders(parquet, RECORDS)

        base_s, base_requests = timed_delivery(store, stub, parquet, endpoint="/v1/baseline",
                                               records=BASELINE_RECORDS, batch_size=1, concurrency=1)
        bare_s, _ = timed_delivery(store, stub, parquet, endpoint="/v1/bare", records=BASELINE_RECORDS, batch_size=1,
                                   concurrency=1, recorder=MemoryRecorder())
        fast_s, fast_requests = timed_delivery(store, stub, parquet, endpoint="/v1/batched", records=RECORDS,
                                               batch_size=BATCH_SIZE, concurrency=CONCURRENCY)
        stats = requests.get(f"{stub}/_stub/stats", timeout=5).json()
        if stats["records_by_path"] != {"/v1/baseline": BASELINE_RECORDS, "/v1/bare": BASELINE_RECORDS,
                                        "/v1/batched": RECORDS}:
            raise RuntimeError(f"the stub counted {stats['records_by_path']}")
    finally:
        if stub_process is not None:
            stub_process.terminate()
            stub_process.wait(timeout=10)
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    base_rate = BASELINE_RECORDS / base_s
    bare_rate = BASELINE_RECORDS / bare_s
    fast_rate = RECORDS / fast_s
    ratio = fast_rate / base_rate
    strict = fast_rate / max(base_rate, bare_rate)
    print(f"stub API latency {LATENCY_MS} ms per request; api_call rows in PostgreSQL for every attempt")
    print(f"baseline  sequential, 1 record/request : {BASELINE_RECORDS:>7,} records, {base_requests:>5} requests "
          f"in {base_s:6.2f} s = {base_rate:>9,.0f} records/s")
    print(f"filegate  {BATCH_SIZE}/batch, {CONCURRENCY} in flight      : {RECORDS:>7,} records, {fast_requests:>5} "
          f"requests in {fast_s:6.2f} s = {fast_rate:>9,.0f} records/s")
    print(f"baseline  same, no api_call rows       : {BASELINE_RECORDS:>7,} records, {BASELINE_RECORDS:>5} requests "
          f"in {bare_s:6.2f} s = {bare_rate:>9,.0f} records/s")
    print(f"ratio {ratio:,.0f}x against the baseline, {strict:,.0f}x against the faster of the two baselines "
          f"(goal >= {GOAL:.0f}x, judged on the latter); the stub counted each record once")
    return strict >= GOAL
