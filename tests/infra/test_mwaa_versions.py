"""The local lock runs MWAA's versions (issue 11): every package MWAA 3.3.1 pins (Airflow's constraints-3.3.1 for
Python 3.12 plus MWAA's essential constraints) has MWAA's version in constraints.txt unless it is a listed
deviation, and every other package in the lock is a listed addition (infra/local/mwaa-parity.toml).

MWAA's files are found as infra/local/lock.sh finds them ($MWAA_CONSTRAINTS_DIR, default ../shared/mwaa beside the
clone). Without them the tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import importlib.util
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"

_spec = importlib.util.spec_from_file_location("mwaa_constraints", ROOT / "infra" / "local" / "mwaa_constraints.py")
assert _spec is not None and _spec.loader is not None
mwaa_constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mwaa_constraints)


def _environment(python: str, platform: str = "linux") -> dict[str, str]:
    system = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[platform]
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "implementation_version": python,
        "sys_platform": platform,
        "platform_system": system,
        "os_name": "nt" if platform == "win32" else "posix",
        "platform_machine": "AMD64" if platform == "win32" else "x86_64",
        "platform_release": "",
        "platform_version": "",
    }


# MWAA's image: Linux, CPython 3.12 (the files are its py3.12 constraints).
MWAA_ENVIRONMENT = _environment("3.12.0")
# Where the lock is used: Python 3.11 here, 3.12 in CI and on MWAA, and whatever else the universal lock covers;
# each series at its first and a late micro release, on each platform the lock has markers for.
LOCK_ENVIRONMENTS = {
    f"Python {python} {platform}": _environment(python, platform)
    for python in ("3.11.0", "3.11.99", "3.12.0", "3.12.99", "3.13.0", "3.14.0")
    for platform in ("linux", "darwin", "win32")
}


@dataclass(frozen=True)
class Pin:
    name: str  # PEP 503 normalised
    version: str
    marker: Marker | None
    line: str

    def applies(self, environment: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def _pins(path: Path) -> list[Pin]:
    pins = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}:{number}: not one == pin: {raw}"
        pins.append(Pin(canonicalize_name(requirement.name), specifiers[0].version, requirement.marker, line))
    return pins


@pytest.fixture(scope="module")
def mwaa() -> dict[str, str]:
    """MWAA's version of every package its two files pin (markers evaluated for MWAA's Linux/Python 3.12)."""
    if mwaa_constraints.missing_files():
        message = mwaa_constraints.missing_message()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs MWAA's constraint files:\n{message}")
        pytest.skip(message.replace("\n", " "))
    versions: dict[str, str] = {}
    for name in mwaa_constraints.MWAA_FILES:
        for pin in _pins(mwaa_constraints.mwaa_dir() / name):
            if not pin.applies(MWAA_ENVIRONMENT):
                continue
            earlier = versions.setdefault(pin.name, pin.version)
            assert earlier == pin.version, f"MWAA's files disagree on {pin.name}: {earlier} and {pin.version}"
    return versions


@pytest.fixture(scope="module")
def lock() -> list[Pin]:
    return _pins(LOCK)


@pytest.fixture(scope="module")
def parity() -> dict[str, Any]:
    data: dict[str, Any] = mwaa_constraints.load_parity()
    assert set(data) <= {"deviations", "additions"}, f"unknown tables in mwaa-parity.toml: {sorted(data)}"
    return data


@pytest.fixture(scope="module")
def deviations(parity: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {canonicalize_name(name): entry for name, entry in parity.get("deviations", {}).items()}


@pytest.fixture(scope="module")
def additions(parity: dict[str, Any]) -> dict[str, str]:
    return {canonicalize_name(name): why for name, why in parity.get("additions", {}).items()}


def _deviation_applies(deviation: dict[str, str], environment: dict[str, str]) -> bool:
    bounds = mwaa_constraints.python_range(deviation)
    if bounds is None:
        return True
    operator, version = bounds
    return Version(environment["python_full_version"]) in SpecifierSet(f"{operator}{version}")


def _resolved(lock: list[Pin], environment: dict[str, str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for pin in lock:
        if pin.applies(environment):
            earlier = versions.setdefault(pin.name, pin.version)
            assert earlier == pin.version, f"constraints.txt pins {pin.name} twice for one environment"
    return versions


def test_the_lock_has_mwaas_version_of_every_package_mwaa_pins(
    mwaa: dict[str, str], lock: list[Pin], deviations: dict[str, dict[str, str]]
) -> None:
    wrong: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for label, environment in LOCK_ENVIRONMENTS.items():
        for name, version in _resolved(lock, environment).items():
            if name not in mwaa:
                continue
            deviation = deviations.get(name)
            if deviation is not None and _deviation_applies(deviation, environment):
                expected = deviation["ours"]
                if deviation["mwaa"] != mwaa[name]:
                    wrong[(name, version, f"{mwaa[name]} (deviation says MWAA has {deviation['mwaa']})")].append(label)
                    continue
            else:
                expected = mwaa[name]
            if version != expected:
                wrong[(name, version, expected)].append(label)
    lines = [
        f"  {name}: lock {version}, expected {expected} (on {len(labels)} environments, e.g. {labels[0]})"
        for (name, version, expected), labels in sorted(wrong.items())
    ]
    assert not wrong, (
        f"{len({key[0] for key in wrong})} packages in constraints.txt differ from MWAA 3.3.1's pins without a "
        f"matching deviation in infra/local/mwaa-parity.toml (re-lock: bash infra/local/lock.sh):\n" + "\n".join(lines)
    )


def test_every_deviation_is_real(mwaa: dict[str, str], lock: list[Pin], deviations: dict[str, dict[str, str]]) -> None:
    stale = []
    for name, deviation in sorted(deviations.items()):
        if not deviation.get("reason", "").strip():
            stale.append(f"{name}: no reason")
        if name not in mwaa:
            stale.append(f"{name}: MWAA does not pin it (an addition, not a deviation)")
            continue
        if deviation["mwaa"] != mwaa[name]:
            stale.append(f"{name}: MWAA pins {mwaa[name]}, the entry says {deviation['mwaa']}")
        if deviation["ours"] == deviation["mwaa"]:
            stale.append(f"{name}: ours equals MWAA's version")
        used = [
            label
            for label, environment in LOCK_ENVIRONMENTS.items()
            if _deviation_applies(deviation, environment)
            and _resolved(lock, environment).get(name) == deviation["ours"] != mwaa[name]
        ]
        if not used:
            stale.append(f"{name}: constraints.txt never locks {deviation['ours']} (stale entry)")
    assert not stale, "infra/local/mwaa-parity.toml has deviations that do not match the lock:\n  " + "\n  ".join(stale)


def test_every_package_mwaa_does_not_pin_is_a_listed_addition(
    mwaa: dict[str, str], lock: list[Pin], additions: dict[str, str]
) -> None:
    ours = {pin.name for pin in lock} - set(mwaa)
    problems = [f"{name}: in constraints.txt, not pinned by MWAA, not listed" for name in sorted(ours - set(additions))]
    problems += [f"{name}: pinned by MWAA, not an addition" for name in sorted(set(additions) & set(mwaa))]
    problems += [f"{name}: not in constraints.txt (stale entry)" for name in sorted(set(additions) - ours - set(mwaa))]
    problems += [f"{name}: no reason" for name, why in sorted(additions.items()) if not str(why).strip()]
    assert not problems, "[additions] in infra/local/mwaa-parity.toml do not match the lock:\n  " + "\n  ".join(
        problems
    )
