"""What a Filegate task reads from Airflow's task context: who is acting (for the status history), whether this
is the last try (a file is failed only then) and when the next one comes, and the S3 events that triggered the
run."""

from __future__ import annotations

from typing import Any

from filegate.status.store import Actor


def actor(context: dict[str, Any]) -> Actor:
    """The task instance as recorded in every status transition it makes."""
    ti = context["ti"]
    return Actor(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, try_number=ti.try_number)


def is_last_try(context: dict[str, Any]) -> bool:
    """No retry follows this try: a file that fails now is marked `failed` instead of being left for the retry."""
    ti = context["ti"]
    return bool(ti.try_number > (ti.task.retries or 0))


def next_try_in_s(context: dict[str, Any]) -> float:
    """About how long until Airflow retries this task if this try fails: its retry_delay, doubled per try
    with exponential backoff (Airflow adds up to as much again as jitter), capped by max_retry_delay."""
    ti = context["ti"]
    task = ti.task
    delay = task.retry_delay.total_seconds() if task.retry_delay else 0.0
    if task.retry_exponential_backoff:
        delay *= 2 ** max((ti.try_number or 1) - 1, 0)
    if task.max_retry_delay:
        delay = min(delay, task.max_retry_delay.total_seconds())
    return delay


def event_messages(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The SQS messages (S3 event notifications) carried by the asset events that triggered this run."""
    messages: list[dict[str, Any]] = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload") or {}
            messages.extend(payload.get("message_batch") or [])
    return messages
