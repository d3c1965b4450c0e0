"""Airflow DAGs `sense_<feed>`, one per feed contract: scheduled, backfillable processing of the raw files whose
key date falls in each run's data interval. See each DAG's docs in the UI."""

from __future__ import annotations

from filegate.contracts import load_contracts
from filegate.orchestration.sense_feed import build_sense_dag

for _contract in load_contracts():
    globals()[f"sense_{_contract.name}"] = build_sense_dag(_contract)
