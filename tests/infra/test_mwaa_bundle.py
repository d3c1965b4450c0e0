"""The MWAA bundle's layout, and that building twice gives the same bytes (so unchanged code never redeploys)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from filegate_deploy.bundle import BundleError, Sources, build, check_requirements, manifest


def test_layout_matches_what_mwaa_reads(built_bundle: Path) -> None:
    dags = built_bundle / "dags"
    assert {p.name for p in (ROOT / "dags").glob("*.py")} <= {p.name for p in dags.glob("*.py")}
    assert not (dags / "filegate").exists(), "the library travels in plugins.zip, once"
    assert sorted(p.name for p in (dags / "feeds").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "include" / "feeds").glob("*.yaml"))
    assert not list(built_bundle.rglob("__pycache__"))
    ignored = (dags / ".airflowignore").read_text().splitlines()
    assert "feeds/" in ignored
    assert (built_bundle / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert (built_bundle / "startup.sh").read_bytes() == (ROOT / "infra" / "mwaa" / "startup.sh").read_bytes()


def _tree(folder: Path, prefix: str = "") -> list[str]:
    return sorted(prefix + p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def test_plugins_zip_holds_the_plugin_files_and_the_library_at_its_root(built_bundle: Path) -> None:
    with zipfile.ZipFile(built_bundle / "plugins.zip") as archive:
        names = sorted(archive.namelist())
        ignore = archive.read(".airflowignore").decode().splitlines()
    plugin_files = [n for n in _tree(ROOT / "plugins") if n != ".airflowignore"]
    library_files = _tree(ROOT / "include" / "filegate", "filegate/")
    assert names == sorted([".airflowignore", *plugin_files, *library_files])
    assert "filegate/status/migrations/0001_initial.sql" in names
    # Without this line the plugin manager would import every library module under its bare file name.
    assert "filegate/" in ignore
    assert not [n for n in names if n.startswith(("plugins/", "include/"))]


def test_a_second_copy_of_the_library_is_refused(tmp_path: Path) -> None:
    sources = Sources.of_repo()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "filegate").mkdir()
    with pytest.raises(BundleError, match="one copy of the library"):
        build(tmp_path / "out", Sources(dags, sources.library, sources.feeds, sources.plugins, sources.requirements,
                                        sources.startup))


def test_rebuilding_gives_identical_bytes(built_bundle: Path, tmp_path: Path) -> None:
    assert build(tmp_path / "again") == manifest(built_bundle)


def test_startup_script_points_the_library_at_the_synced_contracts(built_bundle: Path) -> None:
    """The library is in plugins/, the contracts in dags/feeds/: startup.sh says where (FILEGATE_FEEDS_DIR)."""
    done = subprocess.run(["sh", "-c", '. "$1"; printf %s "$FILEGATE_FEEDS_DIR"', "sh",
                           str(built_bundle / "startup.sh")], env={"AIRFLOW_HOME": "/usr/local/airflow"},
                          capture_output=True, text=True, check=True)
    assert done.stdout == "/usr/local/airflow/dags/feeds"


def test_requirements_without_constraint_line_are_refused(tmp_path: Path) -> None:
    check_requirements("--constraint https://example/constraints-3.12.txt\nfoo==1\n")
    with pytest.raises(BundleError, match="--constraint"):
        check_requirements("apache-airflow-providers-ftp==3.15.2\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pandas==3.0.5\n")
    sources = Sources.of_repo()
    with pytest.raises(BundleError):
        build(tmp_path / "out", Sources(sources.dags, sources.library, sources.feeds, sources.plugins, requirements,
                                        sources.startup))


def test_repository_requirements_carry_mwaa_constraints_for_airflow_3_3_1() -> None:
    text = (ROOT / "requirements.txt").read_text()
    assert "constraints-3.3.1/constraints-3.12.txt" in text
    check_requirements(text)
