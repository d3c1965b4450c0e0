"""Airflow DAG `daily_report`: per-day report of every feed to S3 reports/<day>/ and SNS. See its docs in the UI."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports it once, before it forks the parses, instead of in every parse:
# each @task is a PythonOperator, whose module imports packaging's requirement parser and Airflow's Variable.
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.orchestration.daily_report import build_daily_report_dag

daily_report = build_daily_report_dag()
