"""Airflow DAGs `sense_<feed>`, one per feed contract: scheduled, backfillable processing of the raw files whose
key date falls in each run's data interval. See each DAG's docs in the UI."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports it once, before it forks the parses, instead of in every parse:
# each @task is a PythonOperator, whose module imports packaging's requirement parser and Airflow's Variable.
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.contracts import load_contracts
from filegate.orchestration.sense_feed import build_sense_dag

for _contract in load_contracts():
    globals()[f"sense_{_contract.name}"] = build_sense_dag(_contract)
