"""DAG integrity test run by `astro dev parse` (and `astro deploy --parse`).

The Astro CLI runs `pytest .astro/test_dag_integrity_default.py` inside the project image, from the project root
(AIRFLOW_HOME, /usr/local/airflow). This is Filegate's version of the file `astro dev init` writes: it parses the
DAG folder the way the dag-processor does and fails on any import error, except for the files listed in
.astro/dag_integrity_exceptions.txt. Unlike the generated file it mocks no connection, variable or environment
variable: Filegate's DAG files must parse without any of them (tests/dags proves it with the network blocked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
EXCEPTIONS = PROJECT / ".astro" / "dag_integrity_exceptions.txt"


def _dags_folder() -> Path:
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder"))


def _exceptions() -> set[str]:
    if not EXCEPTIONS.exists():
        return set()
    lines = (line.strip() for line in EXCEPTIONS.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _parse() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Import errors by file and DAG ids by file, relative to the project root where possible."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(_dags_folder()))

    def rel(path: str) -> str:
        try:
            return Path(path).resolve().relative_to(PROJECT).as_posix()
        except ValueError:
            return path

    errors = {rel(path): message.strip() for path, message in bag.import_errors.items()}
    dags: dict[str, list[str]] = {}
    for dag in bag.dags.values():
        dags.setdefault(rel(dag.fileloc), []).append(dag.dag_id)
    return errors, dags


ERRORS, DAGS = _parse()
DAG_FILES = sorted(set(ERRORS) | set(DAGS))


def test_the_dag_folder_holds_dags() -> None:
    assert DAG_FILES, f"no DAG file found in {_dags_folder()}"


@pytest.mark.parametrize("rel_path", DAG_FILES, ids=str)
def test_file_imports(rel_path: str) -> None:
    if rel_path in ERRORS and rel_path not in _exceptions():
        raise AssertionError(f"{rel_path} failed to import:\n{ERRORS[rel_path]}")
