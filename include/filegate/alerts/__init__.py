"""Alerts: what a person on call needs to know about a failed file or run, built as SNS messages (no Airflow)."""

from __future__ import annotations

from filegate.alerts.messages import (
    Alert,
    dag_run_failed,
    dag_run_url,
    delivery_slot,
    file_needs_attention,
    run_summary,
    task_failed,
    task_log_url,
)
from filegate.alerts.sns import publish

__all__ = ["Alert", "dag_run_failed", "dag_run_url", "delivery_slot", "file_needs_attention", "publish", "run_summary",
           "task_failed", "task_log_url"]
