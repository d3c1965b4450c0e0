"""The engine reports each file's schema, and the drift check applies the contract's `schema_drift` policy before
anything is published (filegate.pipeline.schema_check)."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_support import run
from pydantic import ValidationError

from filegate.contracts.model import Contract
from filegate.pipeline.schema_check import check_schema


def contract(policy: str | None = None, columns: list[dict] | None = None) -> Contract:
    data: dict = {"name": "drifty", "description": "drift test"}
    if policy:
        data["schema_drift"] = policy
    if columns:
        data["schema"] = {"columns": columns}
    return Contract.model_validate(data)


V1 = {"version": 1, "columns": [{"name": "id", "type": "int", "nullable": False},
                                 {"name": "amount", "type": "float", "nullable": False}]}


def test_an_inferred_file_schema_is_its_columns_in_order_with_types_and_nullability(tmp_path: Path) -> None:
    result = run(contract(), tmp_path, "id,amount,note\n1,2.5,\n2,3,x\n")
    assert result.file_schema == [
        {"name": "id", "type": "int", "nullable": False, "declared": False},
        {"name": "amount", "type": "float", "nullable": False, "declared": False},
        {"name": "note", "type": "string", "nullable": True, "declared": False},
    ]


def test_a_declared_file_schema_takes_the_contracts_types_and_keeps_extra_columns_as_text(tmp_path: Path) -> None:
    declared = contract(columns=[{"name": "amount", "type": "decimal", "nullable": False},
                                 {"name": "id", "type": "int"}])
    result = run(declared, tmp_path, "id,amount,extra\n1,2.50,a\n")
    assert result.file_schema == [
        {"name": "id", "type": "int", "nullable": True, "declared": True},
        {"name": "amount", "type": "decimal", "nullable": False, "declared": True},
        {"name": "extra", "type": "string", "nullable": True, "declared": False},
    ]


def test_the_default_policy_is_warn_and_an_unknown_one_is_refused() -> None:
    assert contract().schema_drift == "warn"
    with pytest.raises(ValidationError, match="schema_drift"):
        contract("strict")


def test_no_baseline_or_the_same_schema_is_no_drift(tmp_path: Path) -> None:
    result = run(contract("freeze"), tmp_path, "id,amount\n1,2.5\n")
    check_schema(contract("freeze"), result, None)
    assert result.schema_drift is None
    check_schema(contract("freeze"), result, V1)
    assert result.schema_drift is None and result.status == "processed"


@pytest.mark.parametrize("policy", ["evolve", "warn"])
def test_evolve_and_warn_accept_the_file_and_record_the_drift(tmp_path: Path, policy: str) -> None:
    result = run(contract(policy), tmp_path, "id,amount,channel\n1,2.5,web\n")
    check_schema(contract(policy), result, V1)
    assert result.status == "processed" and result.reason is None
    assert result.schema_drift is not None
    assert result.schema_drift["policy"] == policy and result.schema_drift["verdict"] == policy
    assert result.schema_drift["kinds"] == ["added"] and result.schema_drift["from_version"] == 1
    assert result.summary()["schema_drift"] == result.schema_drift


def test_freeze_quarantines_with_the_diff_as_the_reason(tmp_path: Path) -> None:
    result = run(contract("freeze"), tmp_path, "id,amount\n1,abc\n")  # amount became text
    check_schema(contract("freeze"), result, V1)
    assert result.status == "quarantined"
    assert result.reason == ("schema drift refused (feed drifty has schema_drift: freeze): 1 schema change from "
                             "version 1: column amount type widened: float → string. If the change is expected, set "
                             "schema_drift to evolve or warn and reprocess the file")
    assert result.summary()["schema_drift"]["verdict"] == "freeze"


def test_a_renamed_column_is_recognised_by_its_values_from_the_profile(tmp_path: Path) -> None:
    baseline = {**V1, "profile": {"amount": {"count": 2, "nulls": 0, "distinct": 2, "min": 2.5, "max": 7.0}}}
    result = run(contract("evolve"), tmp_path, "id,total\n1,2.5\n2,7.0\n")
    check_schema(contract("evolve"), result, baseline)
    assert [(c["kind"], c["column"], c["evidence"]) for c in result.schema_drift["changes"]] == [
        ("renamed", "total", "same values")]


def test_the_make_run_samples_show_the_drift_expected_yaml_names(tmp_path: Path) -> None:
    """Each sample with `drift:` in expected.yaml, against the schema of the last earlier processed sample of its
    feed (the feed's version when make run drops it), shows exactly those kinds of change."""
    from datetime import date

    import yaml

    from filegate.contracts import get_contract
    from filegate.pipeline.engine import run_engine

    samples = Path(__file__).resolve().parents[2] / "include" / "samples"
    plan = [item for phase in yaml.safe_load((samples / "expected.yaml").read_text())["phases"] for item in phase]
    checked = 0
    for n, item in enumerate(plan):
        if "drift" not in item:
            continue
        earlier = [i for i in plan[:n] if i["feed"] == item["feed"] and i["expect"] == "processed"]
        assert earlier, f"{item['file']}: no earlier processed sample of feed {item['feed']} to drift from"
        feed = get_contract(item["feed"])
        results = []
        for sample in (earlier[-1], item):
            work = tmp_path / sample["file"].replace("/", "_")
            work.mkdir()
            results.append(run_engine(feed, samples / sample["file"], arrived=date(2026, 11, 21), work_dir=work,
                                      name=Path(sample["file"]).name))
        baseline, drifted = results
        check_schema(feed, drifted, {"version": 1, "columns": baseline.file_schema})
        assert drifted.status == item["expect"]
        assert drifted.schema_drift is not None and drifted.schema_drift["kinds"] == sorted(item["drift"])
        checked += 1
    assert checked >= 1
