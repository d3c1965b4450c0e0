"""Running DAGs with `dag.test()` against the local stack, each in its own interpreter (Airflow reads its
configuration at import). Shared by the integration tests of every DAG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("dag_test_runner.py")


def migrated_airflow_env(stack_env: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """The process environment for Airflow on a fresh SQLite metadata database in `home`, migrated."""
    env = {**os.environ, **stack_env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", **extra}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    return env


def run_dag(env: dict[str, str], dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs one DAG; returns {"run_id", "state", "tasks": {task_id: state}, "output": stdout + stderr}."""
    args = [sys.executable, str(RUNNER), str(ROOT / "dags"), dag_id] + ([json.dumps(conf)] if conf is not None else [])
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # The runner's JSON line is the last one it prints; Airflow may log after it (e.g. OpenLineage's DAG-run event).
    last = next(line for line in reversed(result.stdout.strip().splitlines()) if line.startswith('{"run_id"'))
    outcome: dict[str, Any] = json.loads(last)
    outcome["output"] = result.stdout + result.stderr
    return outcome
