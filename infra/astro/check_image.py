"""Build-time check of the Astro project image (run by the Dockerfile after the runtime installed requirements.txt).

Fails the image build, with one line per problem, when:
- the image's Airflow is not the one MWAA runs (3.3.1; Astro's own builds carry a local label such as
  `3.3.1+astro.N`, which is the same public release);
- the Python minor version is not the one asked for (`--python`, 3.12 like MWAA's image);
- a `name==version` pin of requirements.txt is not what ended up installed (the runtime image or a dependency
  resolution moved it);
- `filegate` does not import from include/ (the Dockerfile's PYTHONPATH).
It then prints every installed Airflow provider, so the build log records what the image ships.

Usage: python infra/astro/check_image.py [--airflow 3.3.1] [--python 3.12] [--requirements requirements.txt]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (options such as --constraint are skipped)."""
    found = {}
    for line in requirements.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def public(version: str) -> str:
    """The public part of a version: `3.3.1+astro.4` -> `3.3.1`."""
    return version.split("+", 1)[0]


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def problems(airflow: str, python: str | None, requirements: Path, include: Path) -> list[str]:
    found = []
    have = installed("apache-airflow")
    if have is None or public(have) != airflow:
        found.append(f"apache-airflow is {have}, expected {airflow}")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python and running != python:
        found.append(f"Python is {running}, expected {python}")
    for name, version in sorted(pins(requirements).items()):
        got = installed(name)
        if got is None or public(got) != version:
            found.append(f"{name} is {got}, requirements.txt pins {version}")
    spec = importlib.util.find_spec("filegate")
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is None or include.resolve() not in origin.parents:
        found.append(f"filegate imports from {origin}, expected {include}/filegate")
    return found


def providers() -> list[str]:
    names = {canonical(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}
    return sorted(f"{n}=={installed(n)}" for n in names if n.startswith("apache-airflow-providers-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", default="3.3.1")
    parser.add_argument("--python", default=None, help="required Python minor version, e.g. 3.12")
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--include", type=Path, default=ROOT / "include")
    args = parser.parse_args(argv)
    found = problems(args.airflow, args.python, args.requirements, args.include)
    for line in found:
        print(f"check_image: {line}", file=sys.stderr)
    print("check_image: providers in the image: " + ", ".join(providers()))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
