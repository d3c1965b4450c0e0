"""How a processing step spreads a batch of files: small files in parallel, big ones one by one, every file's
result kept under its id."""

from __future__ import annotations

import threading
import time

from filegate.pipeline.steps import for_each_file


def test_small_files_run_side_by_side_and_big_files_alone(monkeypatch) -> None:
    monkeypatch.setenv("FILEGATE_PARALLEL_MAX_BYTES", "1000")
    rows = [{"id": n, "size_bytes": 10} for n in range(1, 9)] + [{"id": 100, "size_bytes": 5000},
                                                                {"id": 101, "size_bytes": 9000}]
    running, most, lock = set(), [0], threading.Lock()
    order: list[int] = []

    def work(row: dict) -> str:
        with lock:
            running.add(row["id"])
            most[0] = max(most[0], len(running))
            if row["size_bytes"] > 1000:
                assert running == {row["id"]}, running  # a big file never shares the worker
        time.sleep(0.05)
        with lock:
            running.discard(row["id"])
            order.append(row["id"])
        return f"done {row['id']}"

    results = for_each_file(rows, work, workers=4)
    assert results == {row["id"]: f"done {row['id']}" for row in rows}
    assert most[0] == 4
    assert order[-2:] == [100, 101]


def test_one_worker_keeps_the_batch_sequential() -> None:
    seen: list[str] = []
    rows = [{"id": n, "size_bytes": 1} for n in range(5)]
    for_each_file(rows, lambda row: seen.append(threading.current_thread().name), workers=1)
    assert set(seen) == {threading.main_thread().name}
