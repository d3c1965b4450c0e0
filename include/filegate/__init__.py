"""Filegate: file-ingestion pipelines. The library runs without Airflow; only `filegate.orchestration` imports it."""

from __future__ import annotations

__version__ = "0.1.0"
