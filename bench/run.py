"""Runs every benchmark in bench/ and prints one table at the end: each figure next to its floor measured in the
same run, the ratio and the goal, met or missed by how much. Goals are printed, never asserted as timed tests.

`python bench/run.py engine delivery` runs only the modules whose name contains one of the words. The table is
also written as figures.json and figures.md under bench/results/<UTC time>/ (FILEGATE_BENCH_RESULTS elsewhere).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The table's order (issue 17's); modules not named here follow, by name.
ORDER = ["bench_dag_parse", "bench_delivery", "bench_engine", "bench_schemaless", "bench_ingest", "bench_raw_reads"]


def figures_of(name: str, returned: object) -> list[object]:
    from figures import Figure

    if isinstance(returned, list):
        return returned
    # A module still judging its own goals (bench_lambda, bench_webapp): one row for all of them.
    return [Figure(name=f"{name}: its own goals (see its output)", value=float(bool(returned)), unit="",
                   goal="value>=", limit=1.0)]


def main(selected: list[str]) -> int:
    sys.path.insert(0, str(BENCH))
    from figures import render_markdown, render_text

    names = [m.name for m in pkgutil.iter_modules([str(BENCH)]) if m.name.startswith("bench_")]
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    rows: list = []
    errors: dict[str, str] = {}
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        if selected and not any(s in name for s in selected):
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(name)
            found = figures_of(name, module.main())
        except Exception:  # one broken benchmark must not lose the others' figures
            errors[name] = traceback.format_exc()
            print(errors[name], flush=True)
            continue
        rows.extend(found)
        missed = sum(not f.met for f in found)
        print(f"--- {name}: {len(found)} figure(s), {missed} goal(s) missed ({time.monotonic() - started:.1f} s)",
              flush=True)

    machine = (f"{started_at:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before "
               f"and {os.getloadavg()[0]:.1f} after the run")
    print(f"\n=== figures against their floors ({machine}) ===\n{render_text(rows)}")
    for name in errors:
        print(f"{name}: FAILED (traceback above)")
    out = Path(os.environ.get("FILEGATE_BENCH_RESULTS") or BENCH / "results") / f"{started_at:%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps({"machine": machine, "figures": [f.as_row() for f in rows],
                                                  "failed": errors}, indent=2))
    (out / "figures.md").write_text(f"{machine}\n\n{render_markdown(rows)}\n")
    print(f"written to {out}/figures.json and figures.md")
    return 1 if errors or not all(f.met for f in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
