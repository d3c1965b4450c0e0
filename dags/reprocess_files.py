"""Airflow DAG `reprocess_files`: re-run chosen files from their raw copies (manual, with params)."""

from __future__ import annotations

from filegate.orchestration.reprocess_files import build_reprocess_dag

reprocess_files = build_reprocess_dag()
