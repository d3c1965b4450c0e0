"""A Postgres feed's file on Lambda: the function stages its outputs, the worker loads, audits and publishes them
(filegate.pipeline.staged_publish). The loader is replaced here by a recorder (the real one, on the real Lambda
runtime and Postgres: tests/integration/test_lambda_postgres.py); what is checked is what reaches S3."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lambda_support import BUCKET, Context, big_csv, comparable_summary, in_process_invoker, snapshot

from filegate.contracts.model import Contract
from filegate.functions.events import example
from filegate.lambdas import process_file
from filegate.loading.postgres import LoadError, LoadReport
from filegate.pipeline import heavy, publish, staged_publish
from filegate.pipeline.publish import process_raw_file
from filegate.storage import keys

ARRIVED = date(2026, 11, 20)
RAW_KEY = "raw/lines/2026/11/20/lines.csv"


class Loader:
    """Stands for load_postgres: records each load; `fail` makes the audit fail."""

    def __init__(self, fail: str | None = None) -> None:
        self.loads: list[dict] = []
        self.fail = fail

    def __call__(self, dsn: str, contract: Contract, files, *, sha256: str, expected_rows: int) -> LoadReport:
        rows = sum(pq.read_metadata(path).num_rows for path in files)
        self.loads.append({"sha256": sha256, "expected": expected_rows, "rows": rows})
        if self.fail:
            raise LoadError(self.fail)
        return LoadReport("feeds.lines", rows, rows)


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch) -> Loader:
    monkeypatch.setenv("FILEGATE_TEST_LINES_DSN", "postgresql://unused")
    recorder = Loader()
    monkeypatch.setattr(staged_publish, "load_postgres", recorder)
    monkeypatch.setattr(publish, "load_postgres", recorder)
    return recorder


def _contract(**heavy_settings) -> Contract:
    data = example("process_file")["contract"]
    return Contract.model_validate({
        **data, "thresholds": {"max_rejected_share": 0.6}, "heavy": heavy_settings,
        "destinations": {"postgres": {"table": "lines", "natural_key": ["id"], "dsn_env": "FILEGATE_TEST_LINES_DSN"}},
    })


def _row(s3, data: bytes) -> dict:
    s3.put_object(Bucket=BUCKET, Key=RAW_KEY, Body=data)
    return {"id": 1, "raw_key": RAW_KEY, "name": "lines.csv", "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "params": {}}


def _published(s3) -> dict[str, bytes]:
    return snapshot(s3, "processed/") | snapshot(s3, "quarantine/")


def _worker_outputs(s3, contract: Contract) -> dict[str, bytes]:
    """The in-worker path on the same raw object, after the Lambda path's outputs were taken away."""
    for key in _published(s3):
        s3.delete_object(Bucket=BUCKET, Key=key)
    process_raw_file(s3, BUCKET, contract, raw_key=RAW_KEY, name="lines.csv", arrived=ARRIVED)
    return _published(s3)


def _same_objects(lam: dict[str, bytes], worker: dict[str, bytes]) -> None:
    assert sorted(lam) == sorted(worker)
    for key, body in worker.items():
        if key.endswith(".json"):  # the summary's `seconds` is the run's own
            assert comparable_summary(lam[key]) == comparable_summary(body), key
        else:
            assert lam[key] == body, key


def test_the_function_stages_a_postgres_feeds_outputs_and_publishes_nothing(s3, loader: Loader) -> None:
    contract = _contract()
    row = _row(s3, big_csv())
    prefix = keys.staged_publish_prefix(contract.name, row["sha256"])
    event = {**example("process_file"), "contract": contract.model_dump(mode="json", by_alias=True),
             "staged_publish_prefix": prefix}
    answer = process_file.handler(event, Context())
    assert answer["status"] == "processed" and answer["outputs"]["staged"] == prefix
    assert loader.loads == []  # no database in the function
    assert snapshot(s3, "processed/") == {}
    staged = snapshot(s3, prefix)
    assert sorted(staged) == sorted(staged_publish.staged_objects(answer["outputs"]).values())
    assert all(k.startswith(f"{prefix}processed/lines/") for k in staged)
    assert list(snapshot(s3, "quarantine/")) == [answer["outputs"]["quarantine_rows"]]  # rejects, either way


@pytest.mark.parametrize("split", [False, True], ids=["one-invocation", "split"])
def test_the_worker_loads_then_publishes_what_the_worker_path_writes(s3, loader: Loader, monkeypatch,
                                                                     split: bool) -> None:
    if split:
        monkeypatch.setenv(heavy.PART_BYTES_ENV, "20000")
    contract = _contract(size_threshold_bytes=1000)
    row = _row(s3, big_csv())
    calls: list[str] = []
    outcome = heavy.process_routed(s3, BUCKET, contract, row, arrived=ARRIVED, invoker=in_process_invoker(calls))
    assert ("filegate-merge-parts" in calls) is split
    assert outcome.status == "processed", outcome.reason
    assert outcome.outputs["postgres"] == {"table": "feeds.lines", "rows": outcome.engine.rows_valid}
    assert "staged" not in outcome.outputs
    assert loader.loads == [{"sha256": row["sha256"], "expected": outcome.engine.rows_valid,
                             "rows": outcome.engine.rows_valid}]
    assert snapshot(s3, "staging/") == {}
    lam = _published(s3)
    assert any(k.endswith(".parquet") for k in lam)
    if split:  # mean/stddev of split runs add partial sums in another order: parts are checked elsewhere
        assert sorted(lam) == sorted(_worker_outputs(s3, contract))
    else:
        _same_objects(lam, _worker_outputs(s3, contract))


def test_a_failed_audit_quarantines_the_file_with_the_reason_and_publishes_nothing(s3, loader: Loader) -> None:
    loader.fail = "the natural key (id) repeats within the file: 7 (x2)"
    contract = _contract(size_threshold_bytes=1000)
    row = _row(s3, big_csv())
    outcome = heavy.process_routed(s3, BUCKET, contract, row, arrived=ARRIVED, invoker=in_process_invoker([]))
    assert outcome.status == "quarantined"
    assert outcome.reason == ("Postgres audit of feeds.lines failed, nothing published: the natural key (id) "
                              "repeats within the file: 7 (x2)")
    assert snapshot(s3, "processed/") == {} and snapshot(s3, "staging/") == {}
    assert outcome.outputs["summary"].endswith(".reason.json") and "parquet" not in outcome.outputs
    _same_objects(_published(s3), _worker_outputs(s3, contract))


def test_a_retry_after_a_crash_before_publishing_loads_again_and_publishes_once(s3, loader: Loader,
                                                                                  monkeypatch) -> None:
    contract = _contract(size_threshold_bytes=1000)
    row = _row(s3, big_csv())

    def crash(*args, **kwargs):
        raise ConnectionError("worker lost")

    with monkeypatch.context() as patch:
        patch.setattr(staged_publish, "put_json", crash)
        with pytest.raises(ConnectionError):
            heavy.process_routed(s3, BUCKET, contract, row, arrived=ARRIVED, invoker=in_process_invoker([]))
    assert not any(k.startswith("processed/lines/_summaries/") for k in snapshot(s3, "processed/"))
    outcome = heavy.process_routed(s3, BUCKET, contract, row, arrived=ARRIVED, invoker=in_process_invoker([]))
    assert outcome.status == "processed" and len(loader.loads) == 2  # the UPSERT makes the second load a no-op
    assert snapshot(s3, "staging/") == {}
    _same_objects(_published(s3), _worker_outputs(s3, contract))


def test_staged_objects_sit_below_the_prefix_under_their_processed_keys() -> None:
    outputs = {"staged": "staging/f/0123/publish/", "parquet": ["processed/f/a=1/x.parquet"],
               "summary": "processed/f/_summaries/x.json"}
    assert staged_publish.staged_objects(outputs) == {
        "processed/f/a=1/x.parquet": "staging/f/0123/publish/processed/f/a=1/x.parquet",
        "processed/f/_summaries/x.json": "staging/f/0123/publish/processed/f/_summaries/x.json"}
    assert keys.staged_publish_prefix("f", "0123456789abcdef0123") == "staging/f/0123456789abcdef/publish/"
    assert staged_publish.is_staged({"outputs": outputs}) and not staged_publish.is_staged({"outputs": {}})


def test_a_postgres_feed_without_staging_is_never_published_unloaded(s3, tmp_path: Path, monkeypatch) -> None:
    """merge_parts invoked without a staging prefix and without a database fails by name (it used to publish
    the file without loading it: its rows were lost without a word)."""
    monkeypatch.delenv("FILEGATE_TEST_LINES_DSN", raising=False)
    monkeypatch.setenv(heavy.PART_BYTES_ENV, "20000")
    contract = _contract(size_threshold_bytes=1000)
    row = _row(s3, big_csv())
    monkeypatch.setattr(heavy, "staged_publish_prefix", lambda contract, sha256: None)  # an older worker
    with pytest.raises(RuntimeError, match="dsn_env names FILEGATE_TEST_LINES_DSN, which is not set"):
        heavy.process_routed(s3, BUCKET, contract, row, arrived=ARRIVED, invoker=in_process_invoker([]))
    assert snapshot(s3, "processed/") == {}
