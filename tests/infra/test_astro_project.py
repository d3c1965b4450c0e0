"""The Astro project files checked against the Astro CLI's own rules, since Docker (and so the CLI) cannot run here.

Rules as read from the astro-cli source (github.com/astronomer/astro-cli):
- config/config.go `IsProjectDir`: a directory is an Astro project iff `.astro/config.yaml` exists; every
  `astro dev` command that builds or runs (start, pytest, parse, ...) checks it first (cmd/airflow_hooks.go
  `EnsureProjectDirOrInit`) and otherwise offers to re-initialise the directory.
- cmd/airflow.go `ensureProjectName`: project names match `^(?i)[a-z0-9]([a-z0-9_-]*[a-z0-9])$`.
- pkg/airflowrt/dockerfile.go: the runtime comes from the last FROM; tags are `X.Y-Z` (`FullRuntimeTagRe`) with an
  optional `-python-X.Y` suffix (`RuntimePythonRe`); Airflow 3 runtimes are `3.*` from astrocrpublic.azurecr.io/runtime.
- cmd/airflow.go `airflowPytest` needs a `tests/` directory; airflow/docker.go `Pytest` runs `pytest tests/` when no
  path is given, in a container of the project image whose working directory is AIRFLOW_HOME (/usr/local/airflow),
  with `.env` as env file when present; `astro dev parse` runs `.astro/test_dag_integrity_default.py` the same way.
- The runtime image's ONBUILD steps copy packages.txt and requirements.txt, install them, then copy the build context
  (minus .dockerignore) to /usr/local/airflow.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECK_IMAGE = ROOT / "infra" / "astro" / "check_image.py"
ASTRO_FILES = (".astro/config.yaml", ".astro/dag_integrity_exceptions.txt", ".astro/test_dag_integrity_default.py")
PROJECT_NAME = re.compile(r"^(?i:[a-z0-9]([a-z0-9_-]*[a-z0-9]))$")
FULL_RUNTIME_TAG = re.compile(r"^\d+\.\d+-\d+")
RUNTIME_PYTHON = re.compile(r"-python-(\d+\.\d+)(-base)?$")
# Astro Runtime builds and the Airflow they carry. Not from Astronomer's release notes (not readable here): from
# public projects pinning these tags (3.3-2 = 3.3.0; 3.3-5, 3.3-6, 3.3-7 = 3.3.1; 3.3-8 = 3.3.2). The image build
# itself checks the real version (infra/astro/check_image.py).
RUNTIME_AIRFLOW = {
    "3.3-1": "3.3.0",
    "3.3-2": "3.3.0",
    "3.3-5": "3.3.1",
    "3.3-6": "3.3.1",
    "3.3-7": "3.3.1",
    "3.3-8": "3.3.2",
}
MWAA_AIRFLOW, MWAA_PYTHON = "3.3.1", "3.12"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(text: str) -> dict[str, str]:
    return {_canonical(m.group(1)): m.group(2) for line in text.splitlines() if (m := PIN.match(line.strip()))}


def _runtime_from() -> tuple[str, str]:
    """(image, tag) of the stage the Dockerfile builds, as pkg/airflowrt ParseDockerfileAt reads it."""
    stages = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        line = line.strip()
        if line.upper().startswith("FROM "):
            ref, _, alias = line[5:].strip().partition(" AS ")
            stages.append((alias.strip().lower(), ref.strip()))
    assert stages, "no FROM in Dockerfile"
    ref = stages[-1][1]
    for alias, earlier in reversed(stages[:-1]):
        if alias and alias == ref.lower():
            ref = earlier
    image, _, tag = ref.partition(":")
    return image, tag or "latest"


def _matches(rel: str, pattern: str) -> bool:
    parts = rel.split("/")
    if pattern.startswith("**/"):  # at any depth
        subpaths = ("/".join(parts[j : i + 1]) for i in range(len(parts)) for j in range(i + 1))
        return any(fnmatch.fnmatchcase(sub, pattern[3:]) for sub in subpaths)
    return any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, `!` re-includes; a pattern also covers what is under it."""
    ignored = False
    for pattern in patterns:
        if _matches(rel, pattern.lstrip("!").strip("/")):
            ignored = not pattern.startswith("!")
    return ignored


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_directory_is_an_astro_project() -> None:
    """`.astro/config.yaml` exists (IsProjectDir), parses, names the project validly and turns off astro-run-dag."""
    config = yaml.safe_load((ROOT / ".astro" / "config.yaml").read_text())
    assert isinstance(config, dict)
    assert PROJECT_NAME.match(config["project"]["name"]), config["project"]["name"]
    assert config["disable_astro_run"] is True


def test_astro_files_exist_and_git_keeps_them() -> None:
    for rel in ASTRO_FILES:
        assert (ROOT / rel).is_file(), f"{rel} missing (astro dev init creates it)"
    assert (ROOT / "tests").is_dir() and (ROOT / "packages.txt").is_file() and (ROOT / "requirements.txt").is_file()
    ignored = subprocess.run(["git", "check-ignore", *ASTRO_FILES], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout == "", f".gitignore hides {ignored.stdout.split()}"
    local = subprocess.run(
        ["git", "check-ignore", ".astro/standalone/venv", ".astro/config.yaml.lock"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert len(local.stdout.split()) == 2, "the CLI's local state under .astro/ should stay out of git"


def test_the_build_context_carries_what_the_runtime_and_the_cli_need() -> None:
    patterns = _dockerignore()
    needed = [
        "requirements.txt",
        "packages.txt",
        "Dockerfile",
        "dags/daily_report.py",
        "include/filegate/settings.py",
        "include/feeds/orders.yaml",
        "plugins/filegate_plugin.py",
        "tests/dags/test_dag_policy.py",
        "tests/conftest.py",
        "pyproject.toml",
        "infra/astro/check_image.py",
        *ASTRO_FILES,
    ]
    assert [rel for rel in needed if not (ROOT / rel).is_file() or _dockerignored(rel, patterns)] == []
    local = [
        ".venv/bin/python",
        ".venv-tools/x",
        ".filegate/db",
        ".git/HEAD",
        "build/mwaa/x",
        ".env",
        "include/filegate/__pycache__/x.pyc",
    ]
    assert [rel for rel in local if not _dockerignored(rel, patterns)] == []


def test_dockerfile_runs_airflow_3_3_1_on_python_3_12_from_the_astro_runtime() -> None:
    image, tag = _runtime_from()
    assert image == "astrocrpublic.azurecr.io/runtime", image
    assert FULL_RUNTIME_TAG.match(tag) and tag.startswith("3."), tag
    python = RUNTIME_PYTHON.search(tag)
    base = tag[: python.start()] if python else tag
    assert RUNTIME_AIRFLOW.get(base) == MWAA_AIRFLOW, f"Runtime {base} does not carry Airflow {MWAA_AIRFLOW}"
    assert python and python.group(1) == MWAA_PYTHON, f"{tag}: pin the Python {MWAA_PYTHON} build like MWAA"


def test_dockerfile_puts_the_library_on_the_path_and_checks_the_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENV PYTHONPATH="/usr/local/airflow/include:${PYTHONPATH}"' in text
    run = re.search(r"^RUN python /usr/local/airflow/infra/astro/check_image\.py (.*)$", text, re.MULTILINE)
    assert run, "the Dockerfile does not run infra/astro/check_image.py"
    assert f"--airflow {MWAA_AIRFLOW}" in run.group(1) and f"--python {MWAA_PYTHON}" in run.group(1)
    assert text.index("ENV PYTHONPATH") < run.start()


def test_every_provider_a_pinned_provider_needs_is_pinned_too() -> None:
    """No provider is moved inside the image by dependency resolution alone: what a pinned provider requires of
    another provider is pinned in requirements.txt, at a version that satisfies it (read from the installed
    metadata of the pinned versions)."""
    from packaging.requirements import Requirement

    pins = _pins((ROOT / "requirements.txt").read_text())
    problems = []
    for name, version in pins.items():
        if not name.startswith("apache-airflow-providers-"):
            continue
        assert metadata.version(name) == version, f"{name} in .venv is not the pinned {version}"
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            dep = _canonical(req.name)
            if not dep.startswith("apache-airflow-providers-") or (req.marker and not req.marker.evaluate({})):
                continue
            if dep not in pins or not req.specifier.contains(pins[dep], prereleases=True):
                problems.append(f"{name}=={version} needs {raw}; requirements.txt pins {pins.get(dep)}")
    assert problems == []


def test_image_check_passes_on_the_pins_and_fails_on_drift(tmp_path: Path) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    run = [sys.executable, str(CHECK_IMAGE), "--airflow", MWAA_AIRFLOW, "--python", here]
    ok = subprocess.run(run, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "apache-airflow-providers-amazon==9.34.0" in ok.stdout
    drifted = tmp_path / "requirements.txt"
    drifted.write_text((ROOT / "requirements.txt").read_text().replace("common-sql==2.1.0", "common-sql==2.0.1"))
    bad = subprocess.run([*run, "--requirements", str(drifted)], capture_output=True, text=True)
    assert bad.returncode == 1 and "apache-airflow-providers-common-sql is 2.1.0" in bad.stderr
    for args in (["--airflow", "3.3.2"], ["--python", "3.9"], ["--include", str(tmp_path)]):
        assert subprocess.run([*run, *args], capture_output=True, text=True).returncode == 1, args


def _image_layout(tmp_path: Path) -> Path:
    """The project as the runtime's ONBUILD COPY lays it out in /usr/local/airflow (.dockerignore applied)."""
    home = tmp_path / "usr-local-airflow"
    home.mkdir()
    patterns = _dockerignore()
    for top in (
        "dags",
        "include",
        "plugins",
        "tests",
        ".astro",
        "infra",
        "pyproject.toml",
        "requirements.txt",
        "packages.txt",
        "airflow_settings.yaml",
        "Dockerfile",
    ):
        src = ROOT / top
        if src.is_file():
            shutil.copy2(src, home / top)
            continue
        for path in src.rglob("*"):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and not _dockerignored(rel, patterns):
                (home / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, home / rel)
    return home


def _image_env(home: Path) -> dict[str, str]:
    """The container's environment as far as the tests see it: AIRFLOW_HOME is the project, include/ first on
    PYTHONPATH (Dockerfile ENV), no local stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILEGATE_", "AIRFLOW", "PYTEST"))}
    env.update(AIRFLOW_HOME=str(home), PYTHONPATH=str(home / "include"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return env


@pytest.fixture(scope="module")
def image_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _image_layout(tmp_path_factory.mktemp("astro"))


def test_astro_dev_pytest_runs_the_dag_tests_in_the_image(image_home: Path) -> None:
    """`astro dev pytest` with no argument runs `pytest tests/` in AIRFLOW_HOME: it must collect the DAG tests,
    and only suites that need nothing but the image."""
    env = _image_env(image_home)
    where = subprocess.run(
        [sys.executable, "-c", "import filegate; print(filegate.__file__)"],
        cwd=image_home,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0 and Path(where.stdout.strip()).is_relative_to(image_home / "include"), where
    def collect(path: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", path, "--collect-only", "-q"], cwd=image_home, env=env,
                              capture_output=True, text=True, timeout=600)

    collected = collect("tests/")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/dags/") for i in ids), ids[:5]
    assert any("test_no_import_errors" in i for i in ids) and any("test_every_dag_follows_policy" in i for i in ids)
    named = collect("tests/unit")
    assert any(line.startswith("tests/unit/") for line in named.stdout.splitlines()), named.stdout[-2000:]


def test_astro_dev_parse_passes_for_our_dags_and_fails_on_a_broken_one(image_home: Path, tmp_path: Path) -> None:
    """`astro dev parse` runs `pytest .astro/test_dag_integrity_default.py` in AIRFLOW_HOME."""
    env = _image_env(image_home)
    parse = [sys.executable, "-m", "pytest", ".astro/test_dag_integrity_default.py", "-q", "-p", "no:cacheprovider"]
    ok = subprocess.run(parse, cwd=image_home, env=env, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:]
    dag_files = len(list((image_home / "dags").glob("*.py")))
    # one per DAG file, plus the folder check
    assert re.search(rf"\b{dag_files + 1} passed\b", ok.stdout), ok.stdout[-500:]

    broken = image_home / "dags" / "zz_broken.py"
    # DagBag only opens files that mention both "airflow" and "dag".
    broken.write_text("from airflow.sdk import dag\nimport no_such_module_anywhere\n")
    exceptions = image_home / ".astro" / "dag_integrity_exceptions.txt"
    original = exceptions.read_text()
    try:
        bad = subprocess.run(parse, cwd=image_home, env=env, capture_output=True, text=True, timeout=600)
        assert bad.returncode == 1 and "dags/zz_broken.py failed to import" in bad.stdout, bad.stdout[-2000:]
        exceptions.write_text(original + "dags/zz_broken.py\n")
        exempt = subprocess.run(parse, cwd=image_home, env=env, capture_output=True, text=True, timeout=600)
        assert exempt.returncode == 0, exempt.stdout[-2000:]
    finally:
        broken.unlink()
        exceptions.write_text(original)
