"""Airflow DAGs `process_<feed>`, one per feed contract in include/feeds/. See each DAG's docs in the UI."""

from __future__ import annotations

from filegate.contracts import load_contracts
from filegate.orchestration.process_feed import build_process_dag

for _contract in load_contracts():
    globals()[f"process_{_contract.name}"] = build_process_dag(_contract)
