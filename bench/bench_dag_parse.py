"""Parse time of each DAG file against its floor, Airflow's own import. Goal: ≤ 0.1 s beyond it per file.

Each sample is a fresh interpreter that first does what Airflow's dag-processor does before it forks a parse:
import Airflow and pre-import the `airflow.*` modules the file names (the floor, timed); then it runs the DAG
file. The figure is the two together, so the ratio says what the file adds to a parse. Median of
FILEGATE_BENCH_PARSE_SAMPLES samples (default 5); the files take turns, one sample each per round.

Bytecode is kept (a fresh PYTHONPYCACHEPREFIX, warmed by one discarded sample of each file), as in a dag-processor
that parses the same files again and again: without it every sample would compile every module it imports, a cost
a running deployment pays once, whatever PYTHONDONTWRITEBYTECODE the shell running the bench has set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from figures import Figure, median_of

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.1
SAMPLES = int(os.environ.get("FILEGATE_BENCH_PARSE_SAMPLES", "5"))
PROBE = """
import json, runpy, sys, time
t0 = time.perf_counter()
import importlib
import airflow, airflow.sdk  # Airflow's own import: the baseline every DAG file pays anyway
from airflow.utils.file import iter_airflow_imports
for module in iter_airflow_imports(sys.argv[1]):  # [dag_processor] parsing_pre_import_modules, on by default
    importlib.import_module(module)
t1 = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="dag_parse")
t2 = time.perf_counter()
print(json.dumps({"airflow_import": t1 - t0, "dag_file": t2 - t1}))
"""


def sample(dag_file: Path, env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(dag_file)], capture_output=True, text=True, env=env,
                         check=True, timeout=300)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures["airflow_import"], figures["dag_file"]


def main() -> list[Figure]:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="filegate-bench-"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "FILEGATE_SQS_QUEUE_BASE_URL": os.environ.get("FILEGATE_SQS_QUEUE_BASE_URL",
                                                         "http://127.0.0.1:1/123456789012"),
           "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="filegate-bench-pycache-")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    dag_files = sorted((ROOT / "dags").glob("*.py"))
    for dag_file in dag_files:  # warm the bytecode cache; not counted
        sample(dag_file, env)
    samples: dict[Path, list[tuple[float, float]]] = {f: [] for f in dag_files}
    for _ in range(SAMPLES):  # rounds: a slow spell of the machine hits every file alike
        for dag_file in dag_files:
            samples[dag_file].append(sample(dag_file, env))
    print(f"{'DAG file':<32} {'airflow import':>15} {'file parse':>11}  goal ≤ {GOAL_S} s beyond the import")
    figures = []
    for dag_file, runs in samples.items():
        floor, _ = median_of(a for a, _ in runs)
        note = median_of(a + f for a, f in runs)[1]
        file_s, _ = median_of(f for _, f in runs)
        print(f"{dag_file.name:<32} {floor:>13.3f} s {file_s:>9.3f} s  {'ok' if file_s <= GOAL_S else 'OVER'}")
        # The excess is the median of the file's own time in each sample (not a difference of two medians).
        figures.append(Figure(name=f"DAG parse dags/{dag_file.name}", value=floor + file_s, unit="s",
                              goal="excess<=", limit=GOAL_S, floor=floor,
                              floor_label="import airflow + its pre-imports",
                              note=f"total {note} s"))
    return figures


if __name__ == "__main__":
    raise SystemExit(0 if all(f.met for f in main()) else 1)
