"""Shared test setup: the repository root on the path the way Airflow and MWAA see it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# What `astro dev pytest` (no argument, so `pytest tests/`) runs inside the Astro project image: the suites that
# need nothing but the image. The others need the local stack, the deploy tools or a browser, which the image
# does not have; name them explicitly (`astro dev pytest tests/unit`) to run them there anyway.
ASTRO_IMAGE_SUITES = ("dags",)


def in_astro_image() -> bool:
    """True inside the Astro project image, where the project is copied to AIRFLOW_HOME (/usr/local/airflow)."""
    home = os.environ.get("AIRFLOW_HOME")
    return bool(home) and Path(home).resolve() == ROOT


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not in_astro_image() or collection_path.parent != TESTS or not collection_path.is_dir():
        return None
    if collection_path.name in ASTRO_IMAGE_SUITES:
        return None
    where = Path(config.invocation_params.dir)
    named = [(where / arg.split("::")[0]).resolve() for arg in config.invocation_params.args if not arg.startswith("-")]
    if any(path == collection_path or collection_path in path.parents for path in named):
        return None
    return True


@pytest.fixture
def samples() -> Path:
    return ROOT / "include" / "samples"
