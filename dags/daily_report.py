"""Airflow DAG `daily_report`: per-day report of every feed to S3 reports/<day>/ and SNS. See its docs in the UI."""

from __future__ import annotations

from filegate.orchestration.daily_report import build_daily_report_dag

daily_report = build_daily_report_dag()
