"""Airflow DAGs `process_<feed>`, one per feed contract in include/feeds/. See each DAG's docs in the UI."""

from __future__ import annotations

# Imported here, not in the library, so that the dag-processor pre-imports it once for every parse.
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

from filegate.contracts import load_contracts
from filegate.orchestration.process_feed import build_process_dag

for _contract in load_contracts():
    globals()[f"process_{_contract.name}"] = build_process_dag(_contract, arrival_trigger=MessageQueueTrigger)
