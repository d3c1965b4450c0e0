"""Loads feed contracts from YAML and turns validation problems into one precise message."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from filegate.contracts.model import Contract
from filegate.settings import load_settings

# libyaml's loader where PyYAML was built with it (a tenth of the time: every parse of a DAG file that builds one
# DAG per feed loads every contract), the pure-Python one otherwise: the same safe constructors and resolver.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractError(ValueError):
    """A feed contract that cannot be used, with the file, key and problem named."""


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = "schema" if part == "schema_" else part
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_contract(path: Path) -> Contract:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path}: a contract is a mapping of keys, got {type(data).__name__}")
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ContractError(f"{path}: {problems}") from exc
    if contract.name != path.stem:
        raise ContractError(f"{path}: name: {contract.name!r} must match the file name {path.stem!r}")
    return contract


def load_contracts(feeds_dir: Path | None = None) -> list[Contract]:
    folder = feeds_dir or load_settings().feeds_dir
    return [load_contract(path) for path in sorted(folder.glob("*.yaml"))]


def get_contract(name: str, feeds_dir: Path | None = None) -> Contract:
    folder = feeds_dir or load_settings().feeds_dir
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml"))) or "none"
        raise ContractError(f"unknown feed {name!r} (feeds in {folder}: {known})")
    return load_contract(path)
