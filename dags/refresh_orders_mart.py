"""Example downstream Airflow DAG, scheduled on the orders feed's Parquet asset (see its docs in the UI)."""

from __future__ import annotations

from filegate.contracts import get_contract
from filegate.orchestration.downstream_example import build_downstream_dag

refresh_orders_mart = build_downstream_dag(get_contract("orders"), dag_id="refresh_orders_mart")
