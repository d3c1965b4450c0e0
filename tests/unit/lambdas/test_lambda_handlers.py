"""The CSV handlers called directly with their event fixtures (moto S3 in-process): one invocation gives the
worker's outputs exactly; plan → parts → merge gives the same outputs as one run over the whole file."""

from __future__ import annotations

from datetime import date

import pytest
from lambda_support import BUCKET, Context, big_csv, comparable_summary, parquet_rows, snapshot

from filegate.contracts.model import Contract
from filegate.functions.events import EventError, example
from filegate.lambdas import convert_part, merge_parts, plan_parts, process_file
from filegate.lambdas.runtime import InsufficientTmpSpace
from filegate.pipeline.publish import process_raw_file


@pytest.fixture
def event(s3) -> dict:
    event = example("process_file")
    event["contract"]["thresholds"] = {"max_rejected_share": 0.6}
    s3.put_object(Bucket=BUCKET, Key=event["raw_key"], Body=big_csv())
    return event


def _worker_outputs(s3, event: dict) -> dict[str, bytes]:
    """The in-worker path on the same raw object, after the Lambda outputs were taken away."""
    for key in snapshot(s3, "processed/") | snapshot(s3, "quarantine/"):
        s3.delete_object(Bucket=BUCKET, Key=key)
    process_raw_file(s3, BUCKET, Contract.model_validate(event["contract"]), raw_key=event["raw_key"],
                     name=event["name"], arrived=date.fromisoformat(event["arrived"]))
    return snapshot(s3, "processed/") | snapshot(s3, "quarantine/")


def _assert_same_outputs(lam: dict[str, bytes], worker: dict[str, bytes], *, approx_floats: bool) -> None:
    assert sorted(lam) == sorted(worker)
    for key in worker:
        if key.endswith(".parquet"):
            assert parquet_rows(lam[key]) == parquet_rows(worker[key]), key
        elif key.endswith(".json"):
            assert comparable_summary(lam[key], approx_floats=approx_floats) == comparable_summary(
                worker[key], approx_floats=approx_floats), key
        else:
            assert lam[key] == worker[key], key


def test_process_file_gives_the_worker_outputs(s3, event) -> None:
    result = process_file.handler(event, Context())
    assert result["status"] == "processed", result["reason"]
    assert result["rows"]["total"] == 3000 and 0 < result["rows"]["rejected"] < 3000
    lam = snapshot(s3, "processed/") | snapshot(s3, "quarantine/")
    assert any(k.endswith(".rejected.csv") for k in lam)
    _assert_same_outputs(lam, _worker_outputs(s3, event), approx_floats=False)


def test_plan_parts_and_merge_give_the_outputs_of_one_run(s3, event) -> None:
    plan_event = {**{k: event[k] for k in ("bucket", "raw_key", "feed", "contract")}, "part_bytes": 9000}
    plan = plan_parts.handler(plan_event, Context())
    assert len(plan["parts"]) > 5, plan["reason"]
    work_prefix = f"staging/lines/{plan['sha256'][:16]}/"
    common = {k: event[k] for k in ("bucket", "raw_key", "feed", "name", "arrived", "contract")}
    for part in plan["parts"]:
        done = convert_part.handler({**common, "work_prefix": work_prefix, "header_end": plan["header_end"],
                                     "part": part}, Context())
        assert done["index"] == part["index"] and done["result"].startswith(work_prefix)
    result = merge_parts.handler({**common, "work_prefix": work_prefix, "sha256": plan["sha256"],
                                  "parts": len(plan["parts"])}, Context())
    assert result["status"] == "processed" and result["rows"]["total"] == 3000
    assert snapshot(s3, "staging/") == {}  # staging cleaned up
    lam = snapshot(s3, "processed/") | snapshot(s3, "quarantine/")
    _assert_same_outputs(lam, _worker_outputs(s3, event), approx_floats=True)


def test_not_enough_tmp_space_fails_before_downloading(s3, event, monkeypatch) -> None:
    monkeypatch.setenv("FILEGATE_LAMBDA_SPACE_FACTOR", "1e12")
    with pytest.raises(InsufficientTmpSpace, match=r"raise the function's ephemeral storage \(at most 10240 MB\)"):
        process_file.handler(event, Context())
    assert snapshot(s3, "processed/") == {}


def test_a_bad_event_is_refused_with_its_problems(s3, event) -> None:
    with pytest.raises(EventError, match="'arrived' is a required property"):
        process_file.handler({k: v for k, v in event.items() if k != "arrived"}, Context())
    with pytest.raises(ValueError, match="the event's contract is for feed 'lines', not 'other'"):
        process_file.handler({**event, "feed": "other"}, Context())


@pytest.mark.parametrize("split", [False, True], ids=["one invocation", "plan, parts, merge"])
def test_a_frozen_feed_quarantines_drift_on_lambda_before_publishing(s3, event, split: bool) -> None:
    """The feed's schema version travels in the event (schema_baseline): a file whose columns differ from it is
    quarantined under `schema_drift: freeze` on Lambda as in the worker, and nothing reaches processed/."""
    event["contract"]["schema_drift"] = "freeze"
    baseline = {"version": 3, "columns": [{"name": "id", "type": "int", "nullable": False}]}
    common = {k: event[k] for k in ("bucket", "raw_key", "feed", "name", "arrived", "contract")}
    if split:
        plan = plan_parts.handler({**{k: event[k] for k in ("bucket", "raw_key", "feed", "contract")},
                                   "part_bytes": 20000}, Context())
        work_prefix = f"staging/lines/{plan['sha256'][:16]}/"
        for part in plan["parts"]:
            convert_part.handler({**common, "work_prefix": work_prefix, "header_end": plan["header_end"],
                                  "part": part}, Context())
        result = merge_parts.handler({**common, "work_prefix": work_prefix, "sha256": plan["sha256"],
                                      "parts": len(plan["parts"]), "schema_baseline": baseline}, Context())
    else:
        result = process_file.handler({**event, "schema_baseline": baseline}, Context())
    assert result["status"] == "quarantined"
    assert result["reason"].startswith("schema drift refused (feed lines has schema_drift: freeze): "
                                       "2 schema changes from version 3: column amount added at position 2")
    assert [k for k in snapshot(s3, "processed/") if k.endswith(".parquet")] == []
