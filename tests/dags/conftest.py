"""Parses the DAG folder the way Airflow does, with no metadata database and no network."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="filegate-dagtest-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
# With a queue configured the DAGs build their SQS asset watchers: parse them that way too.
os.environ.setdefault("FILEGATE_SQS_QUEUE_BASE_URL", "http://127.0.0.1:1/123456789012")


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))
