"""Large files of a feed with a Postgres destination, through the REAL Lambda runtime of the local stack
(boto3 → local endpoint → awslambdaric → Filegate's handlers, which have no database, as on AWS) and the process
step on the real status store and Postgres. Found by the chaos run: filegate-process-file tried the load inside
the function and failed every such file; filegate-merge-parts published without loading (rows lost silently).

Now the function stages the outputs and the worker loads, audits and publishes them (filegate.pipeline.
staged_publish): the table holds exactly the file's valid rows, processed/ has the Parquet and the summary,
staging/ is empty; a failed audit quarantines the file with nothing in processed/; a retry adds no row."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal
from typing import Any

import boto3
import psycopg
import pyarrow.parquet as pq
import pytest

from filegate.contracts.model import Contract
from filegate.functions.invoke import boto3_invoker
from filegate.ingestion.arrivals import register_arrivals
from filegate.pipeline import heavy, staged_publish
from filegate.pipeline.steps import deliver_files, process_files
from filegate.status import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
DAY = "2026/11/22"
ROWS = 3000  # ~60 KB: over the feed's 1 KB threshold; 4+ parts of 15 KB when split


def lines_csv(rows: int = ROWS, *, repeat_id: int | None = None) -> tuple[bytes, list[tuple[int, Decimal, str]]]:
    """A CSV with rows that break the contract (amount < 0, not a number) and the valid rows it must load.
    `repeat_id`: that id once more, valid, at the end: a natural-key collision across the file (and its parts)."""
    lines, valid = ["id,amount,note"], []
    for i in range(1, rows + 1):
        if i % 7 == 0:
            lines.append(f"{i},-1.00,negative")
        elif i % 11 == 0:
            lines.append(f"{i},oops,not a number")
        else:
            note = "with, comma" if i % 5 == 0 else f"row {i}"
            lines.append(f'{i},{i % 500}.25,"{note}"')
            valid.append((i, Decimal(f"{i % 500}.25"), note))
    if repeat_id is not None:
        lines.append(f"{repeat_id},1.00,again")
    return ("\n".join(lines) + "\n").encode(), valid


@pytest.fixture
def feed(local_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The worker's database (the status store's, the feed's default destination); the functions do not get it.
    monkeypatch.setenv("FILEGATE_DB_URL", local_stack.db_url)
    name = f"pglam_{uuid.uuid4().hex[:8]}"
    contract = Contract.model_validate({
        "name": name, "description": "Postgres feed with large files (Lambda)",
        "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
        "schema": {"columns": [{"name": "id", "type": "int", "nullable": False},
                               {"name": "amount", "type": "decimal", "scale": 2, "min": 0},
                               {"name": "note", "type": "string"}]},
        "thresholds": {"max_rejected_share": 0.6},
        "heavy": {"size_threshold_bytes": 1024},
        "destinations": {"postgres": {"table": "lines", "schema": name, "natural_key": ["id"]}},
    })
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    invoker = boto3_invoker(endpoint_url=local_stack.lambda_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    store = StatusStore.connect(local_stack.db_url)
    yield Feed(local_stack, contract, s3, invoker, store)
    with psycopg.connect(local_stack.db_url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class Feed:
    def __init__(self, stack: Any, contract: Contract, s3: Any, invoker: Any, store: StatusStore) -> None:
        self.stack, self.contract, self.s3, self.invoker, self.store = stack, contract, s3, invoker, store
        self.bucket, self.name = stack.bucket, contract.name

    def upload(self, data: bytes, name: str = "lines.csv") -> dict[str, Any]:
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.contract.raw_prefix}{DAY}/{name}", Body=data)
        register_arrivals(self.store, self.s3, self.bucket, self.contract, self.actor())
        return next(r for r in self.store.reads.recent_files(feed=self.name) if r["name"] == name)

    def actor(self) -> Actor:
        return Actor(dag_id=f"process_{self.name}", run_id=uuid.uuid4().hex, task_id="process_files", try_number=1)

    def process(self, file_id: int) -> dict[str, Any]:
        """The process step (claim, run on Lambda, record), then the deliver step (no API: processed)."""
        actor = self.actor()
        report = process_files(self.store, self.s3, self.bucket, self.contract, actor, file_ids=[file_id],
                               invoker=self.invoker)
        deliver_files(self.store, self.s3, self.bucket, self.contract, actor, report.done, None)
        row = self.store.reads.get_file(file_id)
        assert row is not None
        return row

    def table(self) -> list[tuple[int, Decimal, str]]:
        with psycopg.connect(self.stack.db_url) as conn:
            return [tuple(r) for r in conn.execute(f'SELECT id, amount, note FROM "{self.name}".lines ORDER BY id')]

    def keys(self, prefix: str) -> list[str]:
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{prefix}/{self.name}/").get("Contents", [])
        return sorted(o["Key"] for o in found)

    def parquet_rows(self, keys: list[str]) -> list[tuple[int, Decimal, str]]:
        rows = []
        for key in keys:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            rows += [(r["id"], r["amount"], r["note"]) for r in pq.read_table(io.BytesIO(body)).to_pylist()]
        return sorted(rows)


def _assert_loaded_and_published(feed: Feed, row: dict[str, Any], valid: list) -> None:
    assert row["status"] == Status.PROCESSED, row["error"]
    assert feed.table() == valid  # exactly the valid rows: count and content
    outputs = row["outputs"]
    assert outputs["postgres"] == {"table": f"{feed.name}.lines", "rows": len(valid)}
    assert "staged" not in outputs
    published = feed.keys("processed")
    assert published == sorted([*outputs["parquet"], outputs["summary"]]) and outputs["parquet"]
    assert feed.parquet_rows(outputs["parquet"]) == valid
    assert {feed.s3.head_object(Bucket=feed.bucket, Key=k)["ContentType"] for k in outputs["parquet"]} == {
        "application/vnd.apache.parquet"}
    summary = feed.s3.get_object(Bucket=feed.bucket, Key=outputs["summary"])["Body"].read()
    assert b'"postgres": {' in summary and f'"rows": {len(valid)}'.encode() in summary
    assert feed.keys("staging") == []


@pytest.mark.parametrize("split", [False, True], ids=["one-invocation", "split"])
def test_a_large_file_is_loaded_on_the_worker_then_published(feed: Feed, monkeypatch, split: bool) -> None:
    if split:
        monkeypatch.setenv(heavy.PART_BYTES_ENV, "15000")
    data, valid = lines_csv()
    row = feed.process(feed.upload(data)["id"])
    _assert_loaded_and_published(feed, row, valid)
    route = row["outputs"]["lambda"]
    assert ("filegate-merge-parts" in route["functions"]) is split
    if split:
        assert route["invocations"] >= 4  # plan, ≥ 2 parts, merge
    else:
        assert route["functions"] == ["filegate-process-file"]


@pytest.mark.parametrize("split", [False, True], ids=["one-invocation", "split"])
def test_a_failed_audit_quarantines_the_file_and_publishes_nothing(feed: Feed, monkeypatch, split: bool) -> None:
    if split:
        monkeypatch.setenv(heavy.PART_BYTES_ENV, "15000")
    data, _ = lines_csv(repeat_id=5)  # id 5 in the first part and again at the end
    row = feed.process(feed.upload(data)["id"])
    assert row["status"] == Status.QUARANTINED, row["error"]
    assert row["error"] == (f"Postgres audit of {feed.name}.lines failed, nothing published: the natural key (id) "
                            "repeats within the file: 5 (x2)")
    assert feed.keys("processed") == [] and feed.keys("staging") == []
    quarantined = feed.keys("quarantine")
    assert row["outputs"]["summary"] in quarantined and row["outputs"]["summary"].endswith(".reason.json")
    reason = feed.s3.get_object(Bucket=feed.bucket, Key=row["outputs"]["summary"])["Body"].read()
    assert b"repeats within the file: 5 (x2)" in reason and b'"status": "quarantined"' in reason
    assert feed.table() == []


def test_a_retry_after_the_worker_died_mid_publish_adds_no_row(feed: Feed, monkeypatch) -> None:
    data, valid = lines_csv()
    file_row = feed.upload(data)
    arrived = file_row["arrived_on"] or file_row["created_at"].date()

    def worker_dies(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the worker was lost")

    # First try: the function staged, the worker loaded and copied the Parquet, then died before the summary.
    with monkeypatch.context() as dying:
        dying.setattr(staged_publish, "put_json", worker_dies)
        with pytest.raises(ConnectionError):
            heavy.process_routed(feed.s3, feed.bucket, feed.contract, file_row, arrived=arrived,
                                 invoker=feed.invoker)
    assert feed.table() == valid
    # The retry runs the file again, end to end; then a re-run of the processed file, once more.
    row = feed.process(file_row["id"])
    _assert_loaded_and_published(feed, row, valid)
    again = heavy.process_routed(feed.s3, feed.bucket, feed.contract, file_row, arrived=arrived,
                                 invoker=feed.invoker)
    assert again.status == "processed" and again.outputs["postgres"]["rows"] == len(valid)
    _assert_loaded_and_published(feed, feed.store.reads.get_file(file_row["id"]), valid)
