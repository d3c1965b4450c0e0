"""Airflow DAG `reprocess_files`: re-run chosen files from their raw copies (manual, with params)."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports it once, before it forks the parses, instead of in every parse:
# each @task is a PythonOperator, whose module imports packaging's requirement parser and Airflow's Variable.
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.orchestration.reprocess_files import build_reprocess_dag

reprocess_files = build_reprocess_dag()
