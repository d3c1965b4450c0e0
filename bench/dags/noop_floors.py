"""Benchmark floors, never deployed: one `noop_floor_<floor feed>` DAG per entry of the shape file that
bench/bench_ingest.py writes (FILEGATE_BENCH_NOOP_SHAPES), each a copy of a real `process_<feed>` DAG's shape
whose tasks do nothing.

Everything on the way to the tasks is the real one: the same S3 → SQS → AssetWatcher path (feed_asset, with the
floor feed's own queue and raw/<floor feed>/ prefix), the same policy arguments and max_active_runs, and as many
task instances with the same dependencies, run by the same executor. What is left out is Filegate's own work, so
bench_ingest's figure over this floor is what Filegate adds to the platform's path.

The shape (task ids and their upstream task ids) is read from the real DAG in a DagBag by the benchmark, not
written here, so the floor follows process_<feed> when its tasks change. Without the environment variable this
file defines no DAG.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Imported here, as in dags/process_feeds.py, so that the dag-processor pre-imports it for every parse.
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import dag, task

from filegate.contracts import get_contract
from filegate.orchestration.policy import Tag, dag_kwargs
from filegate.orchestration.process_feed import feed_asset

SHAPES_ENV = "FILEGATE_BENCH_NOOP_SHAPES"


def build_noop_floor(floor_feed: str, shape: dict[str, Any]) -> Any:
    """`shape`: {"copy_of": feed, "max_active_runs": n, "tasks": {task_id: [upstream task ids]}}."""
    # The real feed's contract under the floor feed's name: its queue and raw prefix become the floor's own.
    contract = get_contract(shape["copy_of"]).model_copy(update={"name": floor_feed})

    @dag(
        dag_id=f"noop_floor_{floor_feed}",
        schedule=[feed_asset(contract, MessageQueueTrigger)],
        max_active_runs=shape["max_active_runs"],
        **dag_kwargs(owner="bench", tags=[Tag.OPERATIONS, "bench"],
                     doc_md=f"Benchmark floor: process_{shape['copy_of']}'s shape with no-op tasks."),
    )
    def noop_floor() -> None:
        made = {}
        for task_id in shape["tasks"]:
            @task(task_id=task_id, doc_md="Does nothing: the floor's task instance.")
            def noop() -> None:
                return None

            made[task_id] = noop()
        for task_id, upstream in shape["tasks"].items():
            for other in upstream:
                made[other] >> made[task_id]

    return noop_floor()


_shapes_file = os.environ.get(SHAPES_ENV)
for _floor_feed, _shape in (json.loads(Path(_shapes_file).read_text()) if _shapes_file else {}).items():
    globals()[f"noop_floor_{_floor_feed}"] = build_noop_floor(_floor_feed, _shape)
