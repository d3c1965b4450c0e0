"""Airflow DAG `recover_stalled_files`: restarts the feeds whose files no run is working on. See its docs in the UI."""

from __future__ import annotations

# Named here, not in the library, so that the dag-processor pre-imports them once, before it forks the parses,
# instead of in every parse of this file: the trigger operator (and Airflow's DAG-run code behind it), and the
# PythonOperator that each @task is (its module imports packaging's requirement parser and Airflow's Variable).
import airflow.providers.standard.operators.python  # noqa: F401
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from filegate.orchestration.recover_stalled_files import build_recover_stalled_files_dag

recover_stalled_files = build_recover_stalled_files_dag(trigger_operator=TriggerDagRunOperator)
