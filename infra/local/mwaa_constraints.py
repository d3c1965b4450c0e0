"""MWAA 3.3.1's pins as uv constraints for the local lock (used by lock.sh and tests/infra/test_mwaa_versions.py).

MWAA installs Airflow 3.3.1 with two constraint files, for Python 3.12:
  - Airflow's constraints-3.3.1 for Python 3.12 (the --constraint URL in requirements.txt), and
  - MWAA's essential constraints (amazon-mwaa-docker-images: images/airflow/3.3.1/etc/mwaa_essential_constraints.txt).
The project does not carry copies of them: they are read from $MWAA_CONSTRAINTS_DIR (a path relative to the
repository root, or absolute), by default ../shared/mwaa beside the clone.

`python infra/local/mwaa_constraints.py OUT` writes OUT: both files' pins, with every deviation listed in
infra/local/mwaa-parity.toml applied (the deviation's version where its `python` range holds, MWAA's elsewhere).
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARITY_FILE = ROOT / "infra" / "local" / "mwaa-parity.toml"
ENV_VAR = "MWAA_CONSTRAINTS_DIR"
DEFAULT_DIR = "../shared/mwaa"
AIRFLOW_FILE = "airflow-3.3.1-constraints-py3.12.txt"
ESSENTIAL_FILE = "mwaa-3.3.1-essential-constraints.txt"
MWAA_FILES = (AIRFLOW_FILE, ESSENTIAL_FILE)
SOURCES = {
    AIRFLOW_FILE: "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt "
    "(the --constraint URL in requirements.txt)",
    ESSENTIAL_FILE: "images/airflow/3.3.1/etc/mwaa_essential_constraints.txt in the aws/amazon-mwaa-docker-images "
    "repository",
}
# A deviation's `python` range is one comparison, so MWAA's side is its complement.
COMPLEMENT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def mwaa_dir() -> Path:
    path = Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)
    return path if path.is_absolute() else (ROOT / path).resolve()


def missing_files() -> list[Path]:
    folder = mwaa_dir()
    return [folder / name for name in MWAA_FILES if not (folder / name).is_file()]


def missing_message() -> str:
    lines = [f"MWAA 3.3.1's constraint files are needed in {mwaa_dir()} (set {ENV_VAR} to another folder):"]
    lines += [f"  {name}: {SOURCES[name]}" for name in MWAA_FILES]
    missing = ", ".join(path.name for path in missing_files())
    return "\n".join([*lines, f"missing: {missing}"])


def load_parity() -> dict:
    return tomllib.loads(PARITY_FILE.read_text())


def python_range(deviation: dict) -> tuple[str, str] | None:
    """The deviation's `python` range (e.g. "<3.12") as (operator, version), or None when it applies everywhere."""
    text = str(deviation.get("python", "")).replace(" ", "")
    if not text:
        return None
    for operator in ("<=", ">=", "<", ">"):
        if text.startswith(operator) and text[len(operator) :]:
            return operator, text[len(operator) :]
    raise ValueError(f"python range {text!r} must be one comparison such as '<3.12'")


def deviation_markers(deviation: dict) -> tuple[str | None, str | None]:
    """PEP 508 markers for (our version, MWAA's version); (None, None) when ours applies everywhere."""
    bounds = python_range(deviation)
    if bounds is None:
        return None, None
    operator, version = bounds
    return (f"python_full_version {operator} '{version}'", f"python_full_version {COMPLEMENT[operator]} '{version}'")


def constraint_lines() -> list[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    deviations = {canonicalize_name(name): entry for name, entry in load_parity().get("deviations", {}).items()}
    out: list[str] = []
    for name in MWAA_FILES:
        out.append(f"# {name}")
        for raw in (mwaa_dir() / name).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            requirement = Requirement(line)
            deviation = deviations.get(canonicalize_name(requirement.name))
            if deviation is None:
                out.append(line)
                continue
            ours, theirs = deviation_markers(deviation)
            if requirement.marker is not None:
                ours = f"({requirement.marker}) and {ours}" if ours else str(requirement.marker)
                theirs = f"({requirement.marker}) and {theirs}" if theirs else None
            out.append(f"{requirement.name}=={deviation['ours']}" + (f" ; {ours}" if ours else ""))
            if theirs:  # MWAA's own pin outside the deviation's Python range
                out.append(f"{requirement.name}{requirement.specifier} ; {theirs}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT", file=sys.stderr)
        return 2
    if missing_files():
        print(missing_message(), file=sys.stderr)
        return 1
    Path(argv[1]).write_text("\n".join(constraint_lines()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
