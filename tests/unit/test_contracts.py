from __future__ import annotations

from pathlib import Path

import pytest

from filegate.contracts import ContractError, load_contract, load_contracts


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_shipped_contract_loads() -> None:
    contracts = load_contracts()
    assert "orders" in {c.name for c in contracts}


def test_error_names_file_key_and_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "feed_a", "name: feed_a\ndescription: x\nschema:\n  columns:\n"
                 "    - {name: a, type: integer}\n")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert str(path) in message
    assert "schema.columns[0].type" in message
    assert "'int'" in message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "feed_b", "name: feed_b\ndescription: x\nthreshold: {max_rejected_share: 0.1}\n")
    with pytest.raises(ContractError, match=r"threshold: Extra inputs are not permitted"):
        load_contract(path)


def test_name_must_match_file(tmp_path: Path) -> None:
    path = write(tmp_path, "feed_c", "name: other\ndescription: x\n")
    with pytest.raises(ContractError, match="must match the file name"):
        load_contract(path)


@pytest.mark.parametrize(
    ("column", "problem"),
    [
        ("{name: a, type: string, min: 1}", "min/max apply to numeric columns"),
        ("{name: a, type: int, min: 5, max: 1}", "greater than max"),
        ("{name: a, regex: '[unclosed'}", "invalid regular expression"),
    ],
)
def test_column_rules_are_checked(tmp_path: Path, column: str, problem: str) -> None:
    path = write(tmp_path, "feed_d", f"name: feed_d\ndescription: x\nschema:\n  columns:\n    - {column}\n")
    with pytest.raises(ContractError, match=problem):
        load_contract(path)


def test_not_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "feed_e", "name: [unclosed\n")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(path)
