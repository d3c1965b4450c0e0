"""The MWAA bundle's layout, and that building twice gives the same bytes (so unchanged code never redeploys)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from filegate_deploy.bundle import BundleError, Sources, build, check_requirements, manifest


def test_layout_matches_what_mwaa_reads(built_bundle: Path) -> None:
    dags = built_bundle / "dags"
    assert {p.name for p in (ROOT / "dags").glob("*.py")} <= {p.name for p in dags.glob("*.py")}
    assert (dags / "filegate" / "__init__.py").is_file() and (dags / "filegate" / "settings.py").is_file()
    assert sorted(p.name for p in (dags / "feeds").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "include" / "feeds").glob("*.yaml"))
    assert not list(built_bundle.rglob("__pycache__"))
    ignored = (dags / ".airflowignore").read_text().splitlines()
    assert "filegate/" in ignored and "feeds/" in ignored
    assert (built_bundle / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert (built_bundle / "startup.sh").read_bytes() == (ROOT / "infra" / "mwaa" / "startup.sh").read_bytes()


def test_plugins_zip_has_the_plugin_files_at_its_root(built_bundle: Path) -> None:
    with zipfile.ZipFile(built_bundle / "plugins.zip") as archive:
        names = sorted(archive.namelist())
    expected = sorted(p.relative_to(ROOT / "plugins").as_posix() for p in (ROOT / "plugins").rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert names == expected
    assert not [n for n in names if n.startswith("plugins/")]


def test_rebuilding_gives_identical_bytes(built_bundle: Path, tmp_path: Path) -> None:
    assert build(tmp_path / "again") == manifest(built_bundle)


def test_feed_contracts_are_found_from_the_bundled_package(built_bundle: Path) -> None:
    """filegate.settings.DEFAULT_FEEDS_DIR is <package>/../feeds: in the bundle that is dags/feeds."""
    settings = (built_bundle / "dags" / "filegate" / "settings.py").read_text()
    assert 'DEFAULT_FEEDS_DIR = Path(__file__).resolve().parents[1] / "feeds"' in settings


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
