"""Airflow DAG `watch_deliveries`: expected-delivery slots kept current, late and missed ones alerted. See its docs
in the UI."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports it once, before it forks the parses, instead of in every parse:
# each @task is a PythonOperator, whose module imports packaging's requirement parser and Airflow's Variable.
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.orchestration.watch_deliveries import build_watch_deliveries_dag

watch_deliveries = build_watch_deliveries_dag()
