"""Example downstream Airflow DAG, scheduled on the orders feed's Parquet asset (see its docs in the UI)."""

from __future__ import annotations

from filegate.contracts import load_contracts
from filegate.orchestration.downstream_example import build_downstream_dag

# An example over one sample feed: a deployment (or a test) whose feeds folder has no `orders` contract gets no
# DAG from this file rather than an import error in every parse.
_orders = next((contract for contract in load_contracts() if contract.name == "orders"), None)
if _orders is not None:
    refresh_orders_mart = build_downstream_dag(_orders, dag_id="refresh_orders_mart")
