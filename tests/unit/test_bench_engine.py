"""Smoke run of bench/bench_engine.py on tiny files: every contender runs and prints its figures (goals are
never asserted: timings belong to `make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_engine_runs_tiny() -> None:
    env = {**os.environ, "FILEGATE_BENCH_ROWS": "3000", "FILEGATE_BENCH_SCALE": "2", "FILEGATE_BENCH_A_ROWS": "1000",
           "FILEGATE_BENCH_REPEATS": "2"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_engine.py")], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    out = done.stdout
    for label in ("filegate engine", "(a) csv row by row", "(b) pandas", "(c) pyarrow, no checks", "ratios:",
                  "peak RSS of the engine"):
        assert label in out, out
    assert "measured on 1,000 rows, time scaled x3.0" in out
    assert out.count("median of 2:") == 7  # 4 contenders on the 1x file, 3 on the 2x one
