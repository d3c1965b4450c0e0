"""Example downstream Airflow DAG, scheduled on the orders feed's Parquet asset (see its docs in the UI)."""

from __future__ import annotations

# Named here so that the dag-processor pre-imports them once, before it forks the parses, instead of in every parse:
# Airflow normalizes the s3:// URI of the asset this DAG is scheduled on with the Amazon provider's handler, whose
# module imports boto3, and each @task is a PythonOperator (its module imports packaging's requirement parser and
# Airflow's Variable).
import airflow.providers.amazon.aws.assets.s3
import airflow.providers.standard.operators.python  # noqa: F401

from filegate.contracts import load_contracts
from filegate.orchestration.downstream_example import build_downstream_dag

# An example over one sample feed: a deployment (or a test) whose feeds folder has no `orders` contract gets no
# DAG from this file rather than an import error in every parse.
_orders = next((contract for contract in load_contracts() if contract.name == "orders"), None)
if _orders is not None:
    refresh_orders_mart = build_downstream_dag(_orders, dag_id="refresh_orders_mart")
