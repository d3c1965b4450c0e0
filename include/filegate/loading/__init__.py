"""Destinations beyond Parquet: a Postgres table loaded Write-Audit-Publish style."""

from __future__ import annotations

from filegate.contracts.targets import target_dsn
from filegate.loading.postgres import LoadError, LoadReport, load_postgres

__all__ = ["LoadError", "LoadReport", "load_postgres", "target_dsn"]
