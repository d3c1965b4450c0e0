"""Airflow DAG `recover_stalled_files`: restarts the feeds whose files no run is working on. See its docs in the UI."""

from __future__ import annotations

from filegate.orchestration.recover_stalled_files import build_recover_stalled_files_dag

recover_stalled_files = build_recover_stalled_files_dag()
