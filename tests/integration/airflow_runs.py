"""Running DAGs with `dag.test()` against the local stack, each in its own interpreter (Airflow reads its
configuration at import). Shared by the integration tests of every DAG."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("dag_test_runner.py")


_migrated_template: Path | None = None  # one `airflow db migrate` per test session, copied for each test


def _airflow_env(stack_env: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **stack_env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", **extra}


def migrated_airflow_env(stack_env: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """The process environment for Airflow on a fresh SQLite metadata database in `home`, migrated. The schema
    is migrated once per session (about 12 s each time) and the empty database copied into each `home`."""
    global _migrated_template
    if _migrated_template is None:
        template_home = Path(tempfile.mkdtemp(prefix="airflow-migrated-"))
        atexit.register(shutil.rmtree, template_home, True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=_airflow_env(stack_env, template_home),
                       check=True, capture_output=True, timeout=300)
        _migrated_template = template_home / "airflow.db"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template, home / "airflow.db")
    return _airflow_env(stack_env, home, **extra)


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
