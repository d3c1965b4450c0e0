"""The file engine against three baselines on generated CSVs (1x and 10x), each run in its own subprocess:

- ours: filegate's engine (parse + validate against a contract + profile + Parquet), `run_engine`;
- (a) a row-by-row `csv`-module implementation that infers types and keeps running statistics per cell;
- (b) pandas `read_csv` + `describe` + `to_parquet`;
- (c) pyarrow `read_csv` → `write_table` (same zstd compression), no checks: the floor.

Prints wall time, rows/s, MB/s and peak RSS for each, and the ratios; goals are printed, never asserted. The
figures for `make bench`'s table: the engine's time over the floor's, ≤ 1.5x at 1x and ≤ 1.2x at 10x, and
memory flat: the engine's peak RSS at 10x ≤ 1.5x its peak at 1x.
Sizes: FILEGATE_BENCH_ROWS (default 1,000,000) for the 1x file; the second file is 10x that
(FILEGATE_BENCH_SCALE, default 10). Baseline (a) runs on at most FILEGATE_BENCH_A_ROWS rows (default 100,000)
and is scaled linearly to the file (its cost is per row), which the output says. The other contenders take turns
for FILEGATE_BENCH_REPEATS rounds (default 3) and each figure is the median: a shared machine's slow spells
then hit every contender alike instead of deciding a ratio.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figure

ROOT = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("FILEGATE_BENCH_ROWS", "1000000"))
SCALE = int(os.environ.get("FILEGATE_BENCH_SCALE", "10"))
A_ROWS = int(os.environ.get("FILEGATE_BENCH_A_ROWS", "100000"))
REPEATS = int(os.environ.get("FILEGATE_BENCH_REPEATS", "3"))
# The naive baselines (a) and (b): FILEGATE_BENCH_ENGINE_BASELINES="" leaves them out (the floor (c) always runs).
BASELINES = os.environ.get("FILEGATE_BENCH_ENGINE_BASELINES", "a,b").split(",")
FLOOR_GOALS = {1: 1.5, 10: 1.2}  # the engine's time over the floor's, by file size (1x, 10x)
MEMORY_GOAL = 1.5  # peak RSS at 10x over the peak at 1x
HEADER = "id,event_date,customer,country,status,quantity,price,discount,score,note"
CONTRACT = {
    "name": "bench",
    "description": "generated benchmark feed",
    "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
    "schema": {"allow_extra_columns": False, "columns": [
        {"name": "id", "type": "int", "nullable": False, "unique": True, "min": 1},
        {"name": "event_date", "type": "date", "nullable": False},
        {"name": "customer", "type": "string", "nullable": False, "regex": "^C[0-9]{6}$"},
        {"name": "country", "type": "string", "nullable": False, "enum": ["DE", "FR", "NL", "GB", "ES", "IT"]},
        {"name": "status", "type": "string", "enum": ["new", "paid", "shipped", "returned"]},
        {"name": "quantity", "type": "int", "min": 0, "max": 1000},
        {"name": "price", "type": "decimal", "scale": 2, "min": 0},
        {"name": "discount", "type": "float", "min": 0, "max": 1},
        {"name": "score", "type": "float"},
        {"name": "note", "type": "string"},
    ]},
    "rules": [{"name": "discount_needs_price", "check": "discount <= 1 or price > 0"}],
    "thresholds": {"max_rejected_share": 0.5},
}
# The same contract with Parquet partitioned by the event's date (~336 partitions a year): shown for the 1x file
# as information; the goals compare the default layout (one partition per arrival date) with (c)'s single file.
PARTITIONED = {**CONTRACT, "destinations": {"parquet": {"partition_by": "event_date"}}}
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """~80 bytes a row; a few bad values so that the rejection path runs too."""
    rnd = random.Random(seed)
    countries = ["DE", "FR", "NL", "GB", "ES", "IT"]
    statuses = ["new", "paid", "shipped", "returned", ""]
    lines_per_chunk = 50_000
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "\n")
        for start in range(0, rows, lines_per_chunk):
            out = []
            for i in range(start + 1, min(rows, start + lines_per_chunk) + 1):
                qty = rnd.randrange(0, 50) if i % 5000 else -1
                day = f"2026-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}"
                out.append(f"{i},{day},C{rnd.randrange(10**6):06d},"
                           f"{countries[i % 6]},{statuses[i % 5]},{qty},{rnd.randrange(100, 99999) / 100:.2f},"
                           f"{rnd.random():.3f},{rnd.gauss(0, 1):.5f},{WORDS[i % 10]} order {rnd.randrange(10**6)}\n")
            fh.write("".join(out))


# ---------------------------------------------------------------- the four contenders (run in a child process)

def run_ours(path: Path, out: Path, contract: dict[str, object] = CONTRACT) -> int:
    sys.path.insert(0, str(ROOT / "include"))
    from datetime import date

    from filegate.contracts.model import Contract
    from filegate.pipeline.engine import run_engine

    result = run_engine(Contract.model_validate(contract), path, arrived=date(2026, 11, 21), work_dir=out)
    if result.status != "processed":
        raise SystemExit(f"engine: {result.status}: {result.reason}")
    return result.rows_total


def run_rowwise(path: Path, out: Path) -> int:
    """Baseline (a): what a straightforward Python implementation does, cell by cell: infer each value's type
    among the engine's (int, float, bool, date, datetime, string) and keep running statistics per column."""
    import csv
    import math
    from collections import Counter
    from datetime import datetime

    bools = {"true", "false", "yes", "no", "t", "f", "y", "n"}
    datetime_formats = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]

    def infer(value: str) -> tuple[str, object]:
        text = value.strip()
        if not text:
            return "null", None
        try:
            return "int", int(text)
        except ValueError:
            pass
        try:
            return "float", float(text)
        except ValueError:
            pass
        if text.lower() in bools:
            return "bool", text.lower() in {"true", "yes", "t", "y"}
        try:
            return "date", datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            pass
        for fmt in datetime_formats:
            try:
                return "datetime", datetime.strptime(text, fmt)
            except ValueError:
                pass
        return "string", text

    stats: dict[str, dict[str, object]] = {}
    rows = 0
    with path.open(newline="", encoding="utf-8") as fh, (out / "rows.csv").open("w", newline="") as sink:
        reader = csv.reader(fh)
        writer = csv.writer(sink)
        header = next(reader)
        for name in header:
            stats[name] = {"types": Counter(), "nulls": 0, "n": 0, "mean": 0.0, "m2": 0.0, "min": None,
                           "max": None, "distinct": set(), "top": Counter()}
        for record in reader:
            rows += 1
            for name, value in zip(header, record, strict=False):
                s = stats[name]
                kind, typed = infer(value)
                s["types"][kind] += 1  # type: ignore[index]
                if typed is None:
                    s["nulls"] += 1  # type: ignore[operator]
                    continue
                if len(s["distinct"]) < 100_000:  # type: ignore[arg-type]
                    s["distinct"].add(typed)  # type: ignore[union-attr]
                if kind in {"int", "float"}:
                    number = float(typed)  # type: ignore[arg-type]
                    s["n"] += 1  # type: ignore[operator]
                    delta = number - s["mean"]  # type: ignore[operator]
                    s["mean"] += delta / s["n"]  # type: ignore[operator]
                    s["m2"] += delta * (number - s["mean"])  # type: ignore[operator]
                if kind in {"int", "float", "date", "datetime"}:
                    s["min"] = typed if s["min"] is None else min(s["min"], typed)  # type: ignore[type-var]
                    s["max"] = typed if s["max"] is None else max(s["max"], typed)  # type: ignore[type-var]
                elif kind == "string" and len(s["top"]) < 100_000:  # type: ignore[arg-type]
                    s["top"][typed] += 1  # type: ignore[index]
            writer.writerow(record)
            if rows >= A_ROWS:
                break
    for s in stats.values():
        s["stddev"] = math.sqrt(s["m2"] / s["n"]) if s["n"] else None  # type: ignore[operator]
    return rows


def run_pandas(path: Path, out: Path) -> int:
    import pandas as pd

    frame = pd.read_csv(path)
    frame.describe(include="all")
    frame.to_parquet(out / "pandas.parquet", compression="zstd")
    return len(frame)


def run_pyarrow(path: Path, out: Path) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(path)
    pq.write_table(table, out / "arrow.parquet", compression="zstd")
    return table.num_rows


def run_ours_partitioned(path: Path, out: Path) -> int:
    return run_ours(path, out, PARTITIONED)


CONTENDERS = {"ours": run_ours, "ours_partitioned": run_ours_partitioned, "a_rowwise": run_rowwise,
              "b_pandas": run_pandas, "c_pyarrow": run_pyarrow}
LABELS = {"ours": "filegate engine", "ours_partitioned": "  same, by event_date", "a_rowwise": "(a) csv row by row",
          "b_pandas": "(b) pandas", "c_pyarrow": "(c) pyarrow, no checks"}


IMPORTS = {"ours": ["pyarrow.parquet", "numpy"], "ours_partitioned": ["pyarrow.parquet", "numpy"],
           "a_rowwise": ["csv"], "b_pandas": ["pandas", "pyarrow.parquet"],
           "c_pyarrow": ["pyarrow.csv", "pyarrow.parquet"]}


def child(name: str, path: str, out: str) -> None:
    import importlib

    # Library imports are not the work being measured (and this machine compiles sources on every import).
    if name.startswith("ours"):
        sys.path.insert(0, str(ROOT / "include"))
        importlib.import_module("filegate.pipeline.engine")
    for module in IMPORTS[name]:
        importlib.import_module(module)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    rows = CONTENDERS[name](Path(path), Path(out))
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU of the work alone, like the wall time: the imports above cost the engine ~2 s and the floor ~0.3 s on
    # this machine, which made the CPU ratio a ratio of import times.
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "cpu": cpu}))


def measure(name: str, path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"fg-bench-{name}-") as out:
        done = subprocess.run([sys.executable, __file__, "--child", name, str(path), out], capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> list[Figure]:
    peaks: dict[int, float] = {}
    results: list[Figure] = []
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' work slows "
          "every contender alike; CPU seconds are printed too)")
    with tempfile.TemporaryDirectory(prefix="fg-bench-") as tmp:
        for factor in (1, SCALE):
            rows = ROWS * factor
            path = Path(tmp) / f"bench_{rows}.csv"
            started = time.perf_counter()
            generate(path, rows)
            megabytes = path.stat().st_size / 1e6
            print(f"\n{rows:,} rows x 10 columns, {megabytes:,.0f} MB (generated in "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
            # Contenders take turns, REPEATS rounds, so a slow spell of the machine hits all of them alike; each
            # figure is the median of its rounds. (a) is measured once: its cost per row does not vary.
            for round_no in range(REPEATS):
                for name in CONTENDERS:
                    if (name == "ours_partitioned" and factor != 1) or (name == "a_rowwise" and round_no):
                        continue
                    if name in ("a_rowwise", "b_pandas") and name[0] not in BASELINES:
                        continue
                    runs[name].append(measure(name, path))
            figures: dict[str, dict[str, float]] = {}
            for name, measured in runs.items():
                if not measured:
                    continue
                figure = {key: statistics.median(run[key] for run in measured) for key in ("seconds", "peak_mb",
                                                                                              "cpu")}
                figure["rows"] = measured[0]["rows"]
                if name == "a_rowwise" and figure["rows"] < rows:
                    sampled = figure["rows"]
                    figure["seconds"] *= rows / sampled
                    figure["cpu"] *= rows / sampled
                    figure["note"] = f"measured on {sampled:,.0f} rows, time scaled x{rows / sampled:.1f}"
                elif len(measured) > 1:
                    figure["note"] = (f"median of {len(measured)}: "
                                      + ", ".join(f"{run['seconds']:.2f}" for run in measured) + " s")
                figure["rows"] = rows
                figures[name] = figure
                note = f"   [{figure['note']}]" if "note" in figure else ""
                print(f"  {LABELS[name]:<24} {figure['seconds']:8.2f} s  {rows / figure['seconds']:>12,.0f} rows/s "
                      f"{megabytes / figure['seconds']:8.1f} MB/s  peak RSS {figure['peak_mb']:7.0f} MB  "
                      f"CPU {figure['cpu']:7.2f} s{note}",
                      flush=True)
            ours = figures["ours"]["seconds"]
            vs_c = ours / figures["c_pyarrow"]["seconds"]
            peaks[factor] = figures["ours"]["peak_mb"]
            floor_goal = FLOOR_GOALS[1 if factor == 1 else 10]
            baselines = "".join(f"{figures[name]['seconds'] / ours:.1f}x faster than {label}  "
                                for name, label in (("a_rowwise", "(a) [goal ≥ 20x]"), ("b_pandas", "(b) [goal > 1x]"))
                                if name in figures)
            print(f"  ratios: {baselines}{vs_c:.2f}x the time of (c), the floor [goal ≤ {floor_goal}x]")
            cpu = figures["ours"]["cpu"]
            results.append(Figure(name=f"engine with a contract, {rows:,} rows", value=ours, unit="s",
                                  goal="ratio<=", limit=floor_goal, floor=figures["c_pyarrow"]["seconds"],
                                  floor_label="pyarrow read_csv + write_table, zstd",
                                  note=f"engine {figures['ours'].get('note', '')}; floor "
                                       f"{figures['c_pyarrow'].get('note', '')}; CPU {cpu:.1f} s vs "
                                       f"{figures['c_pyarrow']['cpu']:.1f} s"))
            print("  by CPU seconds (less sensitive to other load on the machine): "
                  + "".join(f"{figures[name]['cpu'] / cpu:.1f}x ({name[0]})  " for name in ("a_rowwise", "b_pandas")
                            if name in figures)
                  + f"{cpu / figures['c_pyarrow']['cpu']:.2f}x the CPU of (c)")
    growth = peaks[SCALE] / peaks[1]
    print(f"\npeak RSS of the engine: {peaks[1]:.0f} MB (1x) → {peaks[SCALE]:.0f} MB ({SCALE}x): {growth:.2f}x "
          f"[goal ≤ {MEMORY_GOAL}x]")
    results.append(Figure(name=f"engine peak RSS, {ROWS * SCALE:,} rows", value=peaks[SCALE], unit="MB",
                          goal="ratio<=", limit=MEMORY_GOAL, floor=peaks[1],
                          floor_label=f"the engine's own peak at {ROWS:,} rows"))
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(0 if all(f.met for f in main()) else 1)
