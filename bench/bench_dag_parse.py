"""Parse time of each DAG file beyond Airflow's own import. Goal: ≤ 0.2 s per file.

Each sample is a fresh interpreter that first does what Airflow's dag-processor does before it forks a parse:
import Airflow and pre-import the `airflow.*` modules the file names (the baseline, timed); then it runs the
DAG file (the figure). Median of several samples.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.2
SAMPLES = 5
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


def measure(dag_file: Path, env: dict[str, str]) -> tuple[float, float]:
    airflow_s, file_s = [], []
    for _ in range(SAMPLES):
        out = subprocess.run([sys.executable, "-c", PROBE, str(dag_file)], capture_output=True, text=True, env=env,
                             check=True, timeout=300)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        airflow_s.append(figures["airflow_import"])
        file_s.append(figures["dag_file"])
    return statistics.median(airflow_s), statistics.median(file_s)


def main() -> bool:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="filegate-bench-"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "FILEGATE_SQS_QUEUE_BASE_URL": os.environ.get("FILEGATE_SQS_QUEUE_BASE_URL",
                                                         "http://127.0.0.1:1/123456789012")}
    ok = True
    print(f"{'DAG file':<32} {'airflow import':>15} {'file parse':>11} {'ratio':>7}  goal ≤ {GOAL_S} s")
    for dag_file in sorted((ROOT / "dags").glob("*.py")):
        airflow_s, file_s = measure(dag_file, env)
        ok &= file_s <= GOAL_S
        print(f"{dag_file.name:<32} {airflow_s:>13.3f} s {file_s:>9.3f} s {file_s / airflow_s:>7.2f}  "
              f"{'ok' if file_s <= GOAL_S else 'OVER'}")
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
