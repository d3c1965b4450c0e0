"""Airflow DAGs `process_<feed>`, one per feed contract in include/feeds/. See each DAG's docs in the UI."""

from __future__ import annotations

# Named here, not in the library, so that the dag-processor pre-imports them once, before it forks the parses,
# instead of in every parse: Airflow normalizes the s3:// URI of each feed's raw asset with the Amazon provider's
# handler (its module imports the S3 hook and Airflow's asset models), and each @task is a PythonOperator (its
# module imports packaging's requirement parser and Airflow's Variable).
import airflow.providers.amazon.aws.assets.s3
import airflow.providers.standard.operators.python  # noqa: F401
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

from filegate.contracts import load_contracts
from filegate.orchestration.process_feed import build_process_dag

for _contract in load_contracts():
    globals()[f"process_{_contract.name}"] = build_process_dag(_contract, arrival_trigger=MessageQueueTrigger)
