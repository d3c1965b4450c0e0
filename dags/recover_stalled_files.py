"""Airflow DAG `recover_stalled_files`: restarts the feeds whose files no run is working on. See its docs in the UI."""

from __future__ import annotations

# Imported here, not in the library, so that the dag-processor pre-imports it (and Airflow's DAG-run code behind
# it) once, before it forks the parses, instead of in every parse of this file.
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from filegate.orchestration.recover_stalled_files import build_recover_stalled_files_dag

recover_stalled_files = build_recover_stalled_files_dag(trigger_operator=TriggerDagRunOperator)
