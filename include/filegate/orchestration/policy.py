"""Team policy for every Filegate DAG: owner, tags, retries, alerting. Tests enforce it on the whole DagBag."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from filegate.orchestration.notify import on_dag_failure, on_task_failure

START_DATE = datetime(2026, 1, 1)
DEFAULT_RETRIES = 2


class Tag(StrEnum):
    FILEGATE = "filegate"
    PROCESSING = "processing"
    INGESTION = "ingestion"
    REPORTING = "reporting"
    OPERATIONS = "operations"


def default_args(owner: str = "data-engineering", retries: int = DEFAULT_RETRIES) -> dict[str, Any]:
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "on_failure_callback": on_task_failure,
    }


def delivery_retry_args(retry_for_minutes: float) -> dict[str, Any]:
    """Task arguments of a deliver task: Airflow retries it while the API is unavailable, the worker slot free
    between tries (a sleeping task would hold it for the whole outage), every 30 s at first, then every 2 min
    (FILEGATE_DELIVERY_RETRY_DELAY_S / FILEGATE_DELIVERY_MAX_RETRY_DELAY_S). Enough retries to outlast
    `retry_for_minutes`; the deliver step, not the retry count, decides when a file gives up."""
    delay = max(float(os.environ.get("FILEGATE_DELIVERY_RETRY_DELAY_S") or 30), 1.0)
    longest = max(float(os.environ.get("FILEGATE_DELIVERY_MAX_RETRY_DELAY_S") or 120), delay)
    return {
        "retries": retries_to_outlast(retry_for_minutes * 60, delay, longest),
        "retry_delay": timedelta(seconds=delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=longest),
    }


def retries_to_outlast(deadline_s: float, delay_s: float, max_delay_s: float) -> int:
    """Retries whose shortest delays (Airflow's exponential backoff: delay · 2^(n-1), capped) add up to
    `deadline_s`, plus one for the try that finds the deadline passed; never fewer than the policy's."""
    elapsed, retries = 0.0, 0
    while elapsed < deadline_s:
        elapsed += min(delay_s * 2 ** min(retries, 30), max_delay_s)
        retries += 1
    return max(DEFAULT_RETRIES, retries + 1)


def dag_kwargs(*, owner: str, tags: list[str], doc_md: str) -> dict[str, Any]:
    """Keyword arguments every Filegate DAG shares."""
    return {
        "start_date": START_DATE,
        "catchup": False,
        "default_args": default_args(owner),
        "tags": [Tag.FILEGATE, *tags],
        "doc_md": doc_md,
        "on_failure_callback": on_dag_failure,
    }
