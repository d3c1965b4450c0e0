"""API delivery throughput against its floor: 100,000 records posted to the stub API with 10 ms latency per
request, 500 records per batch, 4 in flight (the contract defaults). Goal: ≥ 50 % of the floor's records/s.

- figure: the production path, Parquet → payload template → `deliver_records` → stub API, with every attempt
  recorded as an `api_call` row in a real PostgreSQL (the embedded one, started here);
- floor: a bare batched thread-pool client: the same batches from the same Parquet (the same payload bytes, by
  the same encoder), posted with `requests` from 4 threads, no bookkeeping, no retries.

The two take turns for FILEGATE_BENCH_DELIVERY_ROUNDS rounds (default 3); each figure is the median.
FILEGATE_BENCH_DELIVERY_RECORDS sets the record count. The stub API runs as its own process on a free port;
afterwards the stub's own count must show every record exactly once, and every batch of the production path
must have its acknowledged `api_call` row.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from figures import Figure, median_of

from filegate.delivery.client import ApiTarget, deliver_records, encode_body
from filegate.delivery.payload import iter_payload_batches
from filegate.delivery.template import PayloadTemplate
from filegate.status.store import Actor, StatusStore
from filegate_stack.config import Ports, StackConfig, free_port
from filegate_stack.stack import Stack

RECORDS = int(os.environ.get("FILEGATE_BENCH_DELIVERY_RECORDS", "100000"))
ROUNDS = int(os.environ.get("FILEGATE_BENCH_DELIVERY_ROUNDS", "3"))
LATENCY_MS = 10
BATCH_SIZE = 500
CONCURRENCY = 4
GOAL_SHARE = 0.5  # of the floor's records/s
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


def timed_delivery(store: StatusStore, stub: str, parquet: Path, *, endpoint: str, records: int, batch_size: int,
                   concurrency: int) -> float:
    file_id, sha = register(store, endpoint.strip("/").replace("/", "_"))
    template = PayloadTemplate.compile(TEMPLATE)
    batches = itertools.islice(iter_payload_batches([parquet], template, batch_size), -(-records // batch_size))
    target = ApiTarget(base_url=stub, endpoint=endpoint, concurrency=concurrency)
    started = time.perf_counter()
    result = deliver_records(batches, target, file_id=file_id, sha256=sha, batch_size=batch_size,
                             acknowledged=set(), recorder=store)
    elapsed = time.perf_counter() - started
    if not result.ok or result.records_posted != records:
        raise RuntimeError(f"delivery incomplete: {result.describe()}")
    acknowledged = sum(bool(c["acknowledged"]) for c in store.reads.api_calls(file_id))
    if acknowledged != result.batches:
        raise RuntimeError(f"{acknowledged} acknowledged api_call rows for {result.batches} batches")
    return elapsed


def timed_bare_client(stub: str, parquet: Path, *, endpoint: str, records: int) -> float:
    """The floor: what posting these batches costs with nothing around it."""
    template = PayloadTemplate.compile(TEMPLATE)
    batches = itertools.islice(iter_payload_batches([parquet], template, BATCH_SIZE), -(-records // BATCH_SIZE))
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY, max_retries=0))
    url = f"{stub}{endpoint}"

    def post(numbered: tuple[int, list[dict[str, object]]]) -> int:
        batch_no, batch = numbered
        response = session.post(url, data=encode_body(batch, None), timeout=30,
                                headers={"Content-Type": "application/json",
                                         "Idempotency-Key": f"{endpoint}-{batch_no}"})
        response.raise_for_status()
        return len(batch)

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        posted = sum(pool.map(post, enumerate(batches)))
    elapsed = time.perf_counter() - started
    session.close()
    if posted != records:
        raise RuntimeError(f"the bare client posted {posted} of {records} records")
    return elapsed


def main() -> list[Figure]:
    home = Path(tempfile.mkdtemp(prefix="filegate-bench-delivery-"))
    stack = Stack(home / "stack", Ports.free(), StackConfig(feeds=[], db_url=None, airflow_db_url=None))
    stub_process = None
    ours: list[float] = []
    bare: list[float] = []
    try:
        stack.start(["postgres"])
        store = StatusStore.connect(stack.env()["FILEGATE_DB_URL"])
        stub_process, stub = start_stub()
        requests.post(f"{stub}/_stub/faults", json={"latency_ms": LATENCY_MS}, timeout=5).raise_for_status()
        parquet = home / "orders.parquet"
        write_orders(parquet, RECORDS)
        expected = {}
        for round_no in range(ROUNDS):  # turns: a slow spell of the machine hits both alike
            ours.append(timed_delivery(store, stub, parquet, endpoint=f"/v1/filegate{round_no}", records=RECORDS,
                                       batch_size=BATCH_SIZE, concurrency=CONCURRENCY))
            bare.append(timed_bare_client(stub, parquet, endpoint=f"/v1/bare{round_no}", records=RECORDS))
            expected.update({f"/v1/filegate{round_no}": RECORDS, f"/v1/bare{round_no}": RECORDS})
            print(f"  round {round_no + 1}: filegate {RECORDS / ours[-1]:,.0f} records/s, bare client "
                  f"{RECORDS / bare[-1]:,.0f} records/s", flush=True)
        stats = requests.get(f"{stub}/_stub/stats", timeout=5).json()
        if stats["records_by_path"] != expected:
            raise RuntimeError(f"the stub counted {stats['records_by_path']}, expected {expected}")
    finally:
        if stub_process is not None:
            stub_process.terminate()
            stub_process.wait(timeout=10)
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    ours_rate, ours_note = median_of(RECORDS / s for s in ours)
    bare_rate, _ = median_of(RECORDS / s for s in bare)
    print(f"stub API latency {LATENCY_MS} ms per request, {BATCH_SIZE} records/batch, {CONCURRENCY} in flight")
    print(f"filegate (api_call rows in PostgreSQL): {ours_rate:>9,.0f} records/s (median of {ROUNDS})")
    print(f"bare thread-pool client, no bookkeeping: {bare_rate:>9,.0f} records/s (median of {ROUNDS})")
    print(f"ratio {ours_rate / bare_rate:.0%} of the floor (goal ≥ {GOAL_SHARE:.0%}); the stub counted each record "
          "once; every batch has its acknowledged api_call row")
    return [Figure(name=f"delivery {RECORDS:,} records, {LATENCY_MS} ms API", value=ours_rate, unit="records/s",
                   goal="ratio>=", limit=GOAL_SHARE, floor=bare_rate, floor_label="bare batched thread-pool client",
                   note=f"records/s {ours_note}")]


if __name__ == "__main__":
    raise SystemExit(0 if all(f.met for f in main()) else 1)
