"""Shared test setup: the repository root on the path the way Airflow and MWAA see it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def samples() -> Path:
    return ROOT / "include" / "samples"
