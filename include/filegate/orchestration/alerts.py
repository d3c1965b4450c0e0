"""Failure callbacks: a task or DAG failure becomes an SNS notification with a link to the task log."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _publish(subject: str, message: dict[str, Any]) -> None:
    topic = os.environ.get("FILEGATE_ALERT_TOPIC_ARN")
    if not topic:
        log.warning("no FILEGATE_ALERT_TOPIC_ARN configured; alert not sent: %s", subject)
        return
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    try:
        SnsHook(aws_conn_id="aws_default").publish_to_target(
            target_arn=topic, message=json.dumps(message, indent=2, default=str), subject=subject[:99]
        )
    except Exception:  # an alert that cannot be sent must not hide the original failure
        log.exception("could not publish alert %r to %s", subject, topic)


def on_task_failure(context: dict[str, Any]) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    _publish(
        f"Filegate task failed: {ti.dag_id}.{ti.task_id}" if ti else "Filegate task failed",
        {
            "dag_id": getattr(ti, "dag_id", None),
            "run_id": getattr(ti, "run_id", None),
            "task_id": getattr(ti, "task_id", None),
            "try_number": getattr(ti, "try_number", None),
            "reason": str(exception) if exception else None,
            "log_url": getattr(ti, "log_url", None),
        },
    )


def on_dag_failure(context: dict[str, Any]) -> None:
    dag_run = context.get("dag_run")
    _publish(
        f"Filegate DAG run failed: {getattr(dag_run, 'dag_id', '?')}",
        {"dag_id": getattr(dag_run, "dag_id", None), "run_id": getattr(dag_run, "run_id", None),
         "reason": context.get("reason")},
    )
