"""A CSV with no schema (the uploads path: type inference + profile + Parquet) against its floor, pyarrow's
`read_csv` (which infers types itself) + `write_table` with the same compression. Goal: ≤ 1.5x the floor.

The file has the mixed types uploads bring: ids, codes with leading zeros, ints with blanks, prices, datetimes
with a space separator, bools, a category and sparse free text. Sizes: FILEGATE_BENCH_SCHEMALESS_ROWS (default
"1000000,3000000"); each contender runs in its own subprocess (imports not timed), the two take turns for
FILEGATE_BENCH_REPEATS rounds (default 3) and each figure is the median; CPU seconds of all threads are printed
beside the wall time (steadier on a machine other jobs share). Then, unless FILEGATE_BENCH_PROFILE=0,
the engine runs once more on the largest file under cProfile, every thread profiled (the engine profiles and
writes Parquet in threads beside the main one), and the top costs are printed: where the time above the floor goes.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figure, median_of

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(n) for n in os.environ.get("FILEGATE_BENCH_SCHEMALESS_ROWS", "1000000,3000000").split(",")]
REPEATS = int(os.environ.get("FILEGATE_BENCH_REPEATS", "3"))
PROFILE = os.environ.get("FILEGATE_BENCH_PROFILE", "1") != "0"
GOAL = 1.5
# What `filegate profile FILE` and an upload without a feed's schema run: nothing declared, all inferred.
CONTRACT = {"name": "adhoc", "description": "schemaless benchmark", "format": {"type": "csv"},
            "thresholds": {"max_rejected_share": 1.0}}
HEADER = "id,customer_code,quantity,price,created_at,active,category,comment"
CATEGORIES = ["books", "garden", "toys", "kitchen", "sports", "music", "office"]
WORDS = ["late delivery", "gift wrap please", "call before", "leave at door", "fragile, handle with care"]


def generate(path: Path, rows: int, seed: int = 11) -> None:
    """~70 bytes a row."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "\n")
        for start in range(0, rows, 50_000):
            out = []
            for i in range(start + 1, min(rows, start + 50_000) + 1):
                quantity = "" if i % 7 == 0 else str(rnd.randrange(1, 500))
                comment = f'"{WORDS[i % 5]}"' if i % 20 == 0 else ""
                out.append(f"{i},{rnd.randrange(10**6):06d},{quantity},{rnd.randrange(100, 999_999) / 100:.2f},"
                           f"2026-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} "
                           f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d},"
                           f"{'true' if rnd.random() < 0.5 else 'false'},{CATEGORIES[i % 7]},{comment}\n")
            fh.write("".join(out))


def run_engine(path: Path, out: Path) -> int:
    from datetime import date

    from filegate.contracts.model import Contract
    from filegate.pipeline.engine import run_engine

    result = run_engine(Contract.model_validate(CONTRACT), path, arrived=date(2026, 11, 21), work_dir=out)
    if result.status != "processed":
        raise SystemExit(f"engine: {result.status}: {result.reason}")
    return result.rows_total


def run_floor(path: Path, out: Path) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from filegate.contracts.model import Contract

    table = pacsv.read_csv(path)
    compression = Contract.model_validate(CONTRACT).destinations.parquet.compression
    pq.write_table(table, out / "floor.parquet", compression=compression)
    return table.num_rows


CONTENDERS = {"engine": run_engine, "floor": run_floor}


def profiled(work: object, *args: object) -> tuple[object, str]:
    """Runs work(*args) with every thread under cProfile; returns its result and the top costs."""
    import cProfile
    import io
    import pstats
    import threading

    profilers: list[cProfile.Profile] = []

    def start_in_thread(*_: object) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        sys.setprofile(None)
        profiler.enable()

    main_profiler = cProfile.Profile()
    threading.setprofile(start_in_thread)
    main_profiler.enable()
    try:
        result = work(*args)  # type: ignore[operator]
    finally:
        main_profiler.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    text = io.StringIO()
    main = pstats.Stats(main_profiler, stream=text)
    text.write("== main thread, by cumulative time ==\n")
    main.sort_stats("cumulative").print_stats(25)
    everything = pstats.Stats(main_profiler, stream=text)
    for profiler in profilers:
        everything.add(profiler)
    text.write(f"== all threads ({len(profilers) + 1}), by own time ==\n")
    everything.sort_stats("tottime").print_stats(25)
    text.write("== which code calls pyarrow.compute (its kernels all show as one wrapper above) ==\n")
    everything.print_callers(r"pyarrow/compute.py:\d+\(wrapper\)")
    return result, text.getvalue()


def child(name: str, path: str, out: str, profile: bool) -> None:
    import importlib

    sys.path.insert(0, str(ROOT / "include"))
    for module in ("filegate.contracts.model", "filegate.pipeline.engine", "pyarrow.csv", "pyarrow.parquet"):
        importlib.import_module(module)  # imports are not the work measured

    started, cpu_started = time.perf_counter(), time.process_time()
    if profile:
        rows, report = profiled(CONTENDERS[name], Path(path), Path(out))
        print(report)
    else:
        rows = CONTENDERS[name](Path(path), Path(out))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_kb / 1024}))


def measure(name: str, path: Path, *, profile: bool = False) -> tuple[dict[str, float], str]:
    with tempfile.TemporaryDirectory(prefix=f"fg-bench-{name}-") as out:
        done = subprocess.run([sys.executable, __file__, "--child", name, str(path), out, str(int(profile))],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def main() -> list[Figure]:
    figures = []
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="fg-bench-schemaless-") as tmp:
        path = Path(tmp) / "upload.csv"
        for rows in SIZES:
            started = time.perf_counter()
            generate(path, rows)
            megabytes = path.stat().st_size / 1e6
            print(f"\n{rows:,} rows x 8 mixed columns, {megabytes:,.0f} MB (generated in "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
            for _ in range(REPEATS):  # turns: a slow spell of the machine hits both alike
                for name in CONTENDERS:
                    runs[name].append(measure(name, path)[0])
            engine_s, engine_note = median_of(r["seconds"] for r in runs["engine"])
            floor_s, floor_note = median_of(r["seconds"] for r in runs["floor"])
            for name, label in (("engine", "filegate engine, no schema"), ("floor", "pyarrow read_csv + write")):
                seconds = statistics.median(r["seconds"] for r in runs[name])
                cpu = statistics.median(r["cpu_seconds"] for r in runs[name])
                peak = statistics.median(r["peak_mb"] for r in runs[name])
                print(f"  {label:<28} {seconds:7.2f} s  {megabytes / seconds:6.1f} MB/s  CPU {cpu:6.2f} s  "
                      f"peak RSS {peak:6.0f} MB  [{median_of(r['seconds'] for r in runs[name])[1]} s]", flush=True)
            engine_cpu, floor_cpu = (statistics.median(r["cpu_seconds"] for r in runs[name])
                                     for name in ("engine", "floor"))
            # CPU seconds (every thread's) are steadier than wall time when other jobs share the cores.
            print(f"  ratio {engine_s / floor_s:.2f}x the floor (goal ≤ {GOAL}x); by CPU seconds "
                  f"{engine_cpu / floor_cpu:.2f}x", flush=True)
            figures.append(Figure(name=f"CSV without a schema, {rows:,} rows ({megabytes:.0f} MB)", value=engine_s,
                                  unit="s", goal="ratio<=", limit=GOAL, floor=floor_s,
                                  floor_label="pyarrow read_csv (own inference) + write_table, zstd",
                                  note=f"engine {engine_note} s; floor {floor_note} s"))
            if PROFILE and rows == SIZES[-1]:
                figure, report = measure("engine", path, profile=True)
                print(f"\n  cProfile of the engine on {rows:,} rows ({figure['seconds']:.1f} s under the profiler):")
                print(report, flush=True)
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
    else:
        raise SystemExit(0 if all(f.met for f in main()) else 1)
