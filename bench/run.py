"""Runs every benchmark in bench/ and prints its figures. Each one compares against a baseline measured in
the same run; goals are printed next to the figures, never asserted as timed tests."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main(selected: list[str]) -> int:
    sys.path.insert(0, str(BENCH))
    names = [m.name for m in pkgutil.iter_modules([str(BENCH)]) if m.name.startswith("bench_")]
    failures = 0
    for name in sorted(names):
        if selected and not any(s in name for s in selected):
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        module = importlib.import_module(name)
        ok = module.main()
        print(f"--- {name}: {'goal met' if ok else 'GOAL MISSED'} ({time.monotonic() - started:.1f} s)")
        failures += 0 if ok else 1
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
