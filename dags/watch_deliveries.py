"""Airflow DAG `watch_deliveries`: expected-delivery slots kept current, late and missed ones alerted. See its docs
in the UI."""

from __future__ import annotations

from filegate.orchestration.watch_deliveries import build_watch_deliveries_dag

watch_deliveries = build_watch_deliveries_dag()
