"""Benchmark baseline, never deployed: one task instance per file per step (dynamic task mapping), the design
Filegate avoids. bench/bench_ingest.py triggers it with conf {"feed": ..., "keys": [...]} and compares its
files/min with the batched process_<feed> DAG on the same stack."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from filegate.orchestration.policy import Tag, dag_kwargs


@dag(
    dag_id="baseline_per_file",
    schedule=None,
    max_active_runs=1,
    **dag_kwargs(owner="bench", tags=[Tag.OPERATIONS, "bench"],
                 doc_md="Benchmark baseline: register, process and deliver with one mapped task per file."),
)
def baseline_per_file() -> None:
    @task(doc_md="The keys given in the run's conf.")
    def keys(**context: Any) -> list[str]:
        return list(context["params"].get("keys") or context["dag_run"].conf.get("keys") or [])

    @task(doc_md="Registers and queues one raw key.")
    def register_one(key: str, **context: Any) -> int | None:
        from filegate.contracts import get_contract
        from filegate.ingestion.arrivals import register_arrivals
        from filegate.orchestration.connections import s3_client, status_store
        from filegate.orchestration.task_context import actor
        from filegate.settings import load_settings

        feed = get_contract(context["dag_run"].conf["feed"])
        queued = register_arrivals(status_store(), s3_client(), load_settings().bucket, feed, actor(context),
                                   event_keys=[key], sweep=False)
        return queued[0] if queued else None

    @task(doc_md="Processes one file.")
    def process_one(file_id: int | None, **context: Any) -> int | None:
        from filegate.orchestration.file_steps import process_step

        if file_id is None:
            return None
        done = process_step(context["dag_run"].conf["feed"], context, file_ids=[file_id])
        return done[0] if done else None

    @task(doc_md="Delivers one file.")
    def deliver_one(file_id: int | None, **context: Any) -> None:
        from filegate.orchestration.file_steps import deliver_step

        if file_id is not None:
            deliver_step(context["dag_run"].conf["feed"], [file_id], context)

    deliver_one.expand(file_id=process_one.expand(file_id=register_one.expand(key=keys())))


baseline_per_file()
