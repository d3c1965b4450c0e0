"""Parquet for the aggregates view is decoded in a child process (issue 18): a crash, a hang or a memory blow-up
there is one failed request with a reason, and the process that asked (the Airflow api-server) carries on."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filegate.reporting import aggregates, isolated
from filegate.reporting.isolated import (
    IsolatedRunner,
    WorkerBusy,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimedOut,
)
from filegate.reporting.parquet_scan import scan

SCAN = "filegate.reporting.parquet_scan"
SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", f"from filegate.reporting.isolated import child_main\n{code}"]


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    """Three files, newest first, 1000 rows each: seller S0..S6, n global row number."""
    paths = []
    for f in range(3):
        path = tmp_path / f"{f}.parquet"
        pq.write_table(pa.table({"seller_id": [f"S{(f * 1000 + i) % 7}" for i in range(1000)],
                                 "n": list(range(f * 1000, (f + 1) * 1000))}), path, row_group_size=300)
        paths.append(str(path))
    return paths


def reference(filters: dict[str, str], limit: int, offset: int) -> tuple[list[int], int]:
    rows = [n for n in range(3000) if all(str(f"S{n % 7}") == v for c, v in filters.items() if c == "seller_id")]
    return rows[offset:offset + limit], len(rows)


@pytest.mark.parametrize(("filters", "limit", "offset"), [
    ({}, 10, 0), ({}, 50, 995), ({}, 5, 2999), ({}, 5, 3000), ({}, 1000, 1500),
    ({"seller_id": "S3"}, 7, 0), ({"seller_id": "S3"}, 100, 140), ({"seller_id": "S3"}, 10, 5000),
])
def test_the_scan_pages_and_counts_like_a_plain_loop(files: list[str], filters: dict[str, str], limit: int,
                                                     offset: int) -> None:
    found = scan(files, filters=filters, limit=limit, offset=offset)
    expected, total = reference(filters, limit, offset)
    assert [r["n"] for r in found["rows"]] == expected and found["matched"] == total
    assert found["columns"] == ["seller_id", "n"]


def test_values_cross_the_pipe_as_json(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"day": [dt.date(2026, 11, 20)], "at": [dt.datetime(2026, 11, 20, 8, 30)],
                             "total": pa.array([decimal.Decimal("10.50")], pa.decimal128(10, 2)),
                             "ratio": [float("nan")], "raw": [b"ab"]}), path)
    row = IsolatedRunner().run(SCAN, {"paths": [str(path)], "filters": {}, "limit": 5, "offset": 0},
                               timeout_s=60, max_bytes=1 << 30)["rows"][0]
    assert row == {"day": "2026-11-20", "at": "2026-11-20T08:30:00", "total": "10.50", "ratio": None, "raw": "ab"}


def test_an_unknown_filter_column_is_refused_with_the_columns(files: list[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown column\(s\) nope; the output has seller_id, n"):
        IsolatedRunner().run(SCAN, {"paths": files, "filters": {"nope": "1"}, "limit": 5, "offset": 0},
                             timeout_s=60, max_bytes=1 << 30)


def test_a_segfault_in_the_child_is_a_clear_error_and_the_parent_carries_on(files: list[str]) -> None:
    runner = IsolatedRunner()
    with pytest.raises(WorkerCrashed, match=r"crashed \(SIGSEGV\)"):
        runner.run(SCAN, {}, timeout_s=60, max_bytes=1 << 30, command=SEGFAULT)
    request = {"paths": files, "filters": {}, "limit": 1, "offset": 0}
    assert runner.run(SCAN, request, timeout_s=60, max_bytes=1 << 30)["matched"] == 3000


def test_a_child_past_its_time_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerTimedOut, match="longer than 1 s"):
        IsolatedRunner().run(SCAN, {}, timeout_s=1, max_bytes=1 << 30,
                             command=[sys.executable, "-c", "import time; time.sleep(60)"])
    assert time.monotonic() - started < 10


def test_an_orphaned_child_ends_itself_at_its_deadline() -> None:
    """The child's own alarm, without the parent's timeout: a child whose api-server died does not linger."""
    env = {isolated.DEADLINE_ENV: "1", "PYTHONPATH": isolated.LIBRARY_ROOT}
    code = "import time; child_main(lambda request: time.sleep(60))"
    started = time.monotonic()
    done = subprocess.run(_child(code), input=b"{}", env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == isolated.EXIT_DEADLINE and time.monotonic() - started < 10


def test_memory_past_the_limit_is_out_of_memory_not_a_crash(files: list[str]) -> None:
    runner = IsolatedRunner()
    with pytest.raises(WorkerOutOfMemory, match="more than the 512 MB"):
        runner.run(SCAN, {}, timeout_s=60, max_bytes=512 << 20,
                   command=_child("child_main(lambda request: len(bytearray(1 << 30)))"))
    # so small that Arrow itself cannot load: still reported as memory
    with pytest.raises(WorkerOutOfMemory):
        runner.run(SCAN, {"paths": files, "filters": {}, "limit": 1, "offset": 0}, timeout_s=60,
                   max_bytes=100 << 20)


def test_at_most_max_workers_children_run_at_once() -> None:
    runner = IsolatedRunner(max_workers=1)
    slow = threading.Thread(target=runner.run, args=(SCAN, {}), kwargs={
        "timeout_s": 30, "max_bytes": 1 << 30, "command": _child("child_main(lambda r: __import__('time').sleep(2))")})
    slow.start()
    time.sleep(0.3)
    try:
        with pytest.raises(WorkerBusy, match="1 readers are busy"):
            runner.run(SCAN, {}, timeout_s=30, max_bytes=1 << 30, wait_s=0.1)
    finally:
        slow.join()


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.gets = 0

    def get_paginator(self, name: str) -> Any:
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k, "Size": len(v), "LastModified": dt.datetime(2026, 11, 1, n)}
                                      for n, (k, v) in enumerate(objects.items())]}]

        return Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets += 1
        data = self.objects[Key]

        class Body:
            def read(self, amt: int | None = None) -> bytes:
                return data if amt is None else data[:amt]

        return {"Body": Body()}


def test_the_fallback_asks_the_child_once_per_listing_and_question(files: list[str], monkeypatch) -> None:
    aggregates.clear_cache()
    s3 = FakeS3({f"processed/cachefeed/{n}.parquet": Path(p).read_bytes() for n, p in enumerate(files)})
    first = aggregates.from_parquet(s3, "b", "cachefeed", filters={}, limit=3, offset=0)
    again = aggregates.from_parquet(s3, "b", "cachefeed", filters={}, limit=3, offset=0)
    assert first == again and first is not None and first.total == 3000 and s3.gets == 3  # no second fetch
    aggregates.from_parquet(s3, "b", "cachefeed", filters={}, limit=3, offset=3)
    assert s3.gets == 6  # another question
    s3.objects["processed/cachefeed/9.parquet"] = Path(files[0]).read_bytes()
    assert aggregates.from_parquet(s3, "b", "cachefeed", filters={}, limit=3, offset=0).total == 4000  # new object
    monkeypatch.setattr(aggregates, "READER_COMMAND", SEGFAULT)
    with pytest.raises(WorkerCrashed):
        aggregates.from_parquet(s3, "b", "cachefeed", filters={}, limit=2, offset=0)
    aggregates.clear_cache()


def test_contracts_and_the_delivery_package_load_without_arrow() -> None:
    """The api-server loads every contract (and the connections module) per request: no pyarrow may come with
    them. In a fresh interpreter, so the imports of other tests do not count."""
    code = ("import sys\nfrom filegate.contracts import load_contracts\nassert load_contracts()\n"
            "import filegate.delivery, filegate.reporting.aggregates, filegate.expressions\n"
            "from filegate.expressions import columns_used\nassert columns_used('a * b > 2') == {'a', 'b'}\n"
            "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stderr
