"""Builds the MWAA bundle: what goes to the environment's S3 bucket, laid out as MWAA reads it.

    build/mwaa/
      dags/               the DAG files and the feed contracts as dags/feeds/
        .airflowignore    lists feeds/ (contracts are data, not DAGs)
      plugins.zip         plugins/ and the library filegate/, both at the zip root
        .airflowignore    lists filegate/, so the plugin manager only imports the plugin files
      requirements.txt    the repository's requirements.txt, which carries MWAA's --constraint line
      startup.sh          infra/mwaa/startup.sh

Why the library travels in plugins.zip: MWAA unpacks plugins.zip into $AIRFLOW_HOME/plugins on every component,
and Airflow's settings.initialize() puts that folder on sys.path in every Airflow process: api-server, scheduler,
dag-processor, triggerer and the task processes on workers. The DAGs folder is only added to sys.path by the
DAG bag (parsing and task runs), never in the api-server, and MWAA fixes PYTHONPATH; so a library under dags/
cannot serve the Filegate plugin. There is exactly one copy: the build refuses a filegate/ package anywhere else.
The feed contracts stay in dags/feeds/: MWAA syncs dags/ to every container without an environment update, and
startup.sh points the library at them (FILEGATE_FEEDS_DIR).

Every output is byte-for-byte reproducible (sorted entries, fixed zip timestamps), so an unchanged tree never
triggers an upload or an environment update.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_OUTPUT = REPO / "build" / "mwaa"
LIBRARY = "filegate"
FEEDS = "feeds"
# MWAA's API has no "dags-only" switch for these: each change needs update-environment with the new version.
ENVIRONMENT_FILES = ("plugins.zip", "requirements.txt", "startup.sh")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_CONSTRAINT_LINE = re.compile(r"^\s*(-c |--constraint[ =])", re.MULTILINE)


class BundleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sources:
    dags: Path
    library: Path
    feeds: Path
    plugins: Path
    requirements: Path
    startup: Path

    @classmethod
    def of_repo(cls, repo: Path = REPO) -> Sources:
        return cls(
            dags=repo / "dags",
            library=repo / "include" / LIBRARY,
            feeds=repo / "include" / FEEDS,
            plugins=repo / "plugins",
            requirements=repo / "requirements.txt",
            startup=repo / "infra" / "mwaa" / "startup.sh",
        )


def _shipped(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    return not (set(relative.parts[:-1]) & _SKIP_DIRS) and path.suffix not in _SKIP_SUFFIXES and path.is_file()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if _shipped(p, root)) if root.is_dir() else []


def _copy_tree(source: Path, target: Path) -> int:
    count = 0
    for path in _files(source):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        count += 1
    return count


def _zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_plugins_zip(plugins: Path, library: Path, target: Path) -> tuple[int, int]:
    """plugins/<x> → <x> and the library → filegate/<x>, at the zip root, with an .airflowignore that hides the
    library from the plugin manager; fixed timestamps and modes so equal trees give equal bytes."""
    entries = {path.relative_to(plugins).as_posix(): path for path in _files(plugins)}
    ignore = _airflowignore(plugins, LIBRARY)
    entries.pop(".airflowignore", None)
    library_files = {f"{LIBRARY}/{path.relative_to(library).as_posix()}": path for path in _files(library)}
    entries.update(library_files)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_zip_entry(".airflowignore"), ignore)
        for name in sorted(entries):
            archive.writestr(_zip_entry(name), entries[name].read_bytes())
    return len(entries) - len(library_files), len(library_files)


def _airflowignore(folder: Path, *hidden: str) -> str:
    """The folder's own .airflowignore (if any) plus one line per hidden sub-folder, each once."""
    existing = (folder / ".airflowignore").read_text().splitlines() if (folder / ".airflowignore").is_file() else []
    lines = list(existing)
    for name in hidden:
        if f"{name}/" not in (line.strip() for line in existing):
            lines.append(f"{name}/")
    return "\n".join(lines).strip() + "\n"


def check_requirements(text: str) -> None:
    if not _CONSTRAINT_LINE.search(text):
        raise BundleError(
            "requirements.txt has no --constraint line: MWAA would force its own constraints; "
            "keep the MWAA Airflow 3.3.1 constraints URL in it"
        )


def build(output: Path = DEFAULT_OUTPUT, sources: Sources | None = None) -> dict[str, str]:
    """Rebuilds `output` from scratch; returns {bundle-relative path: sha256} of every file in it."""
    src = sources or Sources.of_repo()
    for required in (src.dags, src.library, src.feeds, src.requirements, src.startup):
        if not required.exists():
            raise BundleError(f"missing {required}")
    if output.exists():
        shutil.rmtree(output)
    dags = output / "dags"
    dags.mkdir(parents=True)
    for folder, name in ((src.dags, LIBRARY), (src.dags, FEEDS), (src.plugins, LIBRARY)):
        if (folder / name).exists():
            raise BundleError(f"{folder / name} must not exist: the bundle ships one copy of the library "
                              f"(in plugins.zip) and the contracts (in dags/{FEEDS}/)")
    dag_files = _copy_tree(src.dags, dags)
    feed_files = _copy_tree(src.feeds, dags / FEEDS)
    (dags / ".airflowignore").write_text(_airflowignore(src.dags, FEEDS))
    plugin_files, library_files = write_plugins_zip(src.plugins, src.library, output / "plugins.zip")
    requirements = src.requirements.read_text()
    check_requirements(requirements)
    (output / "requirements.txt").write_text(requirements)
    shutil.copyfile(src.startup, output / "startup.sh")
    (output / "startup.sh").chmod(0o755)
    log.info("bundle %s: %d DAG files, %d feed contracts, %d plugin files, %d library files in plugins.zip",
             output, dag_files, feed_files, plugin_files, library_files)
    return manifest(output)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(bundle: Path) -> dict[str, str]:
    """{S3 key: sha256} of what a deploy uploads: dags/** and the environment files."""
    entries = {f"dags/{p.relative_to(bundle / 'dags').as_posix()}": sha256_file(p) for p in _files(bundle / "dags")}
    for name in ENVIRONMENT_FILES:
        path = bundle / name
        if not path.is_file():
            raise BundleError(f"{path} missing: build the bundle first (make bundle)")
        entries[name] = sha256_file(path)
    return dict(sorted(entries.items()))
