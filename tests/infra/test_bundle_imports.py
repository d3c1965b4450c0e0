"""Every DAG and the plugin import from the built MWAA bundle alone: the unpacked plugins.zip and dags/ put on the
path by Airflow itself, the installed packages (as MWAA's requirements.txt would provide), and no editable install
of the library. A quick check in one process; tests/infra/test_mwaa_runtime.py runs the whole of Airflow that way."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("bundle_import_check.py")


@pytest.fixture(scope="module")
def parsed(built_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plugins = tmp_path_factory.mktemp("plugins")
    # MWAA unpacks plugins.zip into $AIRFLOW_HOME/plugins.
    with zipfile.ZipFile(built_bundle / "plugins.zip") as archive:
        archive.extractall(plugins)
    dags = built_bundle / "dags"
    done = subprocess.run(
        [sys.executable, "-S", str(CHECK), str(dags), str(plugins), *site.getsitepackages()],
        capture_output=True, text=True, timeout=600, check=False, cwd=str(plugins),
    )
    assert done.returncode == 0, f"bundle import check crashed:\n{done.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["dags"] = str(dags)
    result["plugins"] = str(plugins)
    return result


def test_library_resolves_to_the_copy_in_plugins_zip(parsed: dict[str, Any]) -> None:
    assert parsed["filegate_file"] == str(Path(parsed["plugins"]) / "filegate" / "__init__.py")
    assert parsed["filegate_modules_elsewhere"] == []
    assert parsed["library_modules_loaded_as_plugins"] == []
    # The local stack is never shipped; nothing in the DAGs may need it.
    assert parsed["filegate_stack_importable"] is False


def test_every_dag_file_imports_without_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    # A factory file may define no DAG when no contract uses its source kind; none may come from elsewhere.
    assert set(parsed["dag_files"]) <= {p.name for p in (ROOT / "dags").glob("*.py")}
    assert parsed["dag_files"], "the bundle defines no DAG at all"


def test_the_same_dags_as_the_repository(parsed: dict[str, Any], repository_dag_ids: list[str]) -> None:
    """The bundle yields exactly the DAGs the repository's dags/ yields with the editable install."""
    assert parsed["dag_ids"] == repository_dag_ids


def test_airflowignore_hides_library_and_contracts(parsed: dict[str, Any]) -> None:
    hidden = [f for f in parsed["candidate_files"] if f.split("/")[0] in {"filegate", "feeds"}]
    assert hidden == []
    assert not (Path(parsed["dags"]) / "filegate").exists(), "one copy of the library: in plugins.zip only"
    assert parsed["candidate_files"] == sorted(p.name for p in (ROOT / "dags").glob("*.py"))


def test_plugins_load_from_the_zip(parsed: dict[str, Any]) -> None:
    assert parsed["plugin_errors"] == {}
    plugin_files = [p for p in (ROOT / "plugins").glob("*.py") if "AirflowPlugin" in p.read_text()]
    if plugin_files:
        assert parsed["plugins"], f"plugins.zip holds {plugin_files} but no plugin loaded"
