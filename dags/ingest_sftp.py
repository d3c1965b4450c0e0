"""Airflow DAGs `ingest_sftp_<feed>`, one per SFTP feed contract in include/feeds/. See each DAG's docs in the UI."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports it once, before it forks the parses, instead of in every parse:
# each @task is a PythonOperator, whose module imports packaging's requirement parser and Airflow's Variable.
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.contracts import load_contracts
from filegate.orchestration.ingest_remote import build_ingest_dag

for _contract in load_contracts():
    if _contract.source.kind == "sftp":
        globals()[f"ingest_sftp_{_contract.name}"] = build_ingest_dag(_contract)
