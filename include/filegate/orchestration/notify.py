"""Alerts through SNS: a failed or quarantined file, a failed task and a failed DAG run, each with a link to the
task log; optionally a summary of every finished run.

The topic comes from `FILEGATE_ALERT_TOPIC_ARN` (environment, e.g. MWAA's startup script) or else the Airflow
Variable `filegate_alert_topic_arn` (Secrets Manager backend on MWAA); it is read when an alert is sent, never at
parse time. SNS credentials come from the `aws_default` connection. An alert that cannot be sent is logged and
never hides the failure that caused it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from filegate.alerts import messages
from filegate.alerts.messages import Alert
from filegate.alerts.sns import publish
from filegate.settings import load_settings

log = logging.getLogger(__name__)
AWS_CONN_ID = "aws_default"
TOPIC_VARIABLE = "filegate_alert_topic_arn"
SUMMARY_VARIABLE = "filegate_alert_on_success"
TRUE = {"1", "true", "yes", "on"}


def _variable(key: str) -> str | None:
    try:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
    except Exception as exc:  # no Variable backend reachable (e.g. a callback outside a task)
        log.debug("variable %s not readable: %s", key, exc)
        return None
    return str(value) if value else None


def alert_topic() -> str | None:
    return load_settings().alert_topic_arn or _variable(TOPIC_VARIABLE)


def summary_enabled() -> bool:
    value = os.environ.get("FILEGATE_ALERT_ON_SUCCESS") or _variable(SUMMARY_VARIABLE) or ""
    return value.strip().lower() in TRUE


def base_url() -> str:
    """The Airflow UI address from `[api] base_url` (AIRFLOW__API__BASE_URL); alert links start with it."""
    from airflow.sdk.configuration import conf

    return str(conf.get("api", "base_url", fallback="http://localhost:8080/"))


def _redact(alert: Alert) -> Alert:
    """Masks anything Airflow knows as a secret (connection passwords, masked tokens) before it leaves."""
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # a future Airflow moved it: alerts still go out, built from redacted delivery errors
        return alert
    return Alert(alert.kind, str(redact(alert.subject)), redact(alert.body), alert.attributes)


def send(alert: Alert) -> bool:
    topic = alert_topic()
    if not topic:
        log.warning("no alert topic (FILEGATE_ALERT_TOPIC_ARN or Variable %s); not sent: %s", TOPIC_VARIABLE,
                    alert.subject)
        return False
    try:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        publish(SnsHook(aws_conn_id=AWS_CONN_ID).get_conn(), topic, _redact(alert))
        return True
    except Exception:  # an alert that cannot be sent must not hide the original failure
        log.exception("could not publish alert %r to %s", alert.subject, topic)
        return False


def _ti_log_url(ti: Any) -> str | None:
    if ti is None:
        return None
    return messages.task_log_url(base_url(), ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "try_number", None),
                                 getattr(ti, "map_index", None))


def alert_files(store: Any, file_ids: Iterable[int], context: dict[str, Any]) -> int:
    """One alert per file the task left `failed` or `quarantined`; returns how many were sent."""
    ti = context.get("ti")
    sent = 0
    for file_id in file_ids:
        row = store.reads.get_file(file_id)
        if row is None or row["status"] not in ("failed", "quarantined"):
            continue
        alert = messages.file_needs_attention(row, dag_id=getattr(ti, "dag_id", None),
                                              run_id=getattr(ti, "run_id", None),
                                              task_id=getattr(ti, "task_id", None), log_url=_ti_log_url(ti))
        sent += send(alert)
    return sent


def alert_schema_drift(store: Any, file_ids: Iterable[int], context: dict[str, Any]) -> int:
    """One alert per file accepted with a schema change under `schema_drift: warn`; returns how many were sent."""
    ti = context.get("ti")
    sent = 0
    for file_id in file_ids:
        row = store.reads.get_file(file_id)
        drift = store.schemas.drift_of(file_id)
        if row is None or drift is None:
            continue
        sent += send(messages.schema_drift(row, drift, dag_id=getattr(ti, "dag_id", None), log_url=_ti_log_url(ti)))
    return sent


def send_run_summary(store: Any, file_ids: Iterable[int], context: dict[str, Any]) -> bool:
    """The optional success summary (FILEGATE_ALERT_ON_SUCCESS or Variable filegate_alert_on_success)."""
    if not summary_enabled():
        return False
    ti = context["ti"]
    files = [row for file_id in dict.fromkeys(file_ids) if (row := store.reads.get_file(file_id)) is not None]
    if not files:  # a sweep that found nothing new is not news
        return False
    return send(messages.run_summary(dag_id=ti.dag_id, run_id=ti.run_id, files=files,
                                     run_url=messages.dag_run_url(base_url(), ti.dag_id, ti.run_id)))


def on_task_failure(context: dict[str, Any]) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    send(messages.task_failed(
        dag_id=getattr(ti, "dag_id", "?"), run_id=getattr(ti, "run_id", "?"), task_id=getattr(ti, "task_id", "?"),
        try_number=getattr(ti, "try_number", None),
        reason=f"{type(exception).__name__}: {exception}" if exception else None, log_url=_ti_log_url(ti),
    ))


def on_dag_failure(context: dict[str, Any]) -> None:
    """Airflow passes the last failed task instance as `ti` when it knows it (see dag_processing.processor)."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?"
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or getattr(ti, "run_id", None)
    send(messages.dag_run_failed(
        dag_id=dag_id, run_id=run_id, reason=context.get("reason"), failed_task=getattr(ti, "task_id", None),
        log_url=_ti_log_url(ti), run_url=messages.dag_run_url(base_url(), dag_id, run_id) if run_id else None,
    ))
