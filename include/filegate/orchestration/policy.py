"""Team policy for every Filegate DAG: owner, tags, retries, alerting. Tests enforce it on the whole DagBag."""

from __future__ import annotations

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
