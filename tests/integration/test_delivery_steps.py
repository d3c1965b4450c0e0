"""The deliver step on real Postgres, S3 (moto) and the stub API: a partial failure ends `failed` naming the
failed batches, a re-run posts only those, and every transition is in the history with who made it."""

from __future__ import annotations

import io
import uuid

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget
from filegate.pipeline.reprocess import requeue
from filegate.pipeline.steps import RetryableFailure, deliver_files
from filegate.status import Actor, Status, StatusStore

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(local_stack):
    stub = local_stack.stub_url
    requests.post(f"{stub}/_stub/reset", timeout=5).raise_for_status()
    store = StatusStore.connect(local_stack.db_url)
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    feed = f"steps_{uuid.uuid4().hex[:8]}"
    contract = Contract.model_validate({
        "name": feed, "description": "delivery step test",
        "destinations": {"api": {"endpoint": "/v1/steps", "batch_size": 5, "concurrency": 1,
                                 "payload": {"id": "n", "meta": {"feed": {"$meta": "feed"}}}}},
    })
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(23))}), buffer)
    key = f"processed/{feed}/part.parquet"
    s3.put_object(Bucket=local_stack.bucket, Key=key, Body=buffer.getvalue())
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/2026/11/21/f.csv", name="f.csv",
                         sha256=uuid.uuid4().hex * 2, size_bytes=1, actor=Actor())
    return stub, store, s3, contract, reg.file_id, key


def hold(store: StatusStore, file_id: int, key: str, actor: Actor) -> None:
    store.queue([file_id], actor)
    assert [r["id"] for r in store.claim(actor, file_ids=[file_id])] == [file_id]
    store.save_outputs(file_id, {"parquet": [key]})


def test_partial_failure_fails_the_file_naming_batches_and_a_rerun_posts_only_those(setup, local_stack) -> None:
    stub, store, s3, contract, file_id, key = setup
    target = ApiTarget(base_url=stub, endpoint="/v1/steps", concurrency=1, backoff_s=0.01)
    first = Actor(dag_id="process_x", run_id="run-1", task_id="deliver_records", try_number=1)
    hold(store, file_id, key, first)
    requests.post(f"{stub}/_stub/faults", json={"fail_next": 1, "fail_status": 422}, timeout=5).raise_for_status()
    report = deliver_files(store, s3, local_stack.bucket, contract, first, [file_id], target, last_try=False)
    # A refused batch (422) would be refused again: the file fails now, without burning the task's retries.
    assert report.failed == [file_id]
    row = store.reads.get_file(file_id)
    assert row["status"] == Status.FAILED
    assert "1 failed: #1 (HTTP 422" in row["error"] and "reprocess_files DAG (file_ids=[" in row["error"]
    assert requests.get(f"{stub}/_stub/stats", timeout=5).json()["records_by_path"] == {"/v1/steps": 18}

    second = Actor(dag_id="reprocess_files", run_id="run-2", task_id="requeue_files", try_number=1)
    assert requeue(store, [row], second) == [file_id]
    store.claim(second, file_ids=[file_id])
    deliver = Actor(dag_id="reprocess_files", run_id="run-2", task_id="deliver_records", try_number=1)
    report = deliver_files(store, s3, local_stack.bucket, contract, deliver, [file_id], target)
    assert report.done == [file_id] and store.reads.get_file(file_id)["status"] == Status.PROCESSED
    posted = requests.get(f"{stub}/_stub/requests", params={"path": "/v1/steps"}, timeout=5).json()
    assert [r["outcome"] for r in posted] == ["fail 422", "accepted", "accepted", "accepted", "accepted",
                                              "accepted"]
    assert posted[-1]["idempotency_key"] == posted[0]["idempotency_key"]  # only batch 1 went again
    assert posted[-1]["body"] == [{"id": n, "meta": {"feed": contract.name}} for n in range(5)]
    assert requests.get(f"{stub}/_stub/stats", timeout=5).json()["records_by_path"] == {"/v1/steps": 23}

    events = store.reads.history(file_id)
    assert [e["to_status"] for e in events] == ["pending", "downloaded", "queued", "processing", "failed",
                                                "queued", "processing", "processed"]
    later = events[2:]
    assert all(e["dag_id"] and e["run_id"] and e["task_id"] and e["try_number"] == 1 for e in later)
    assert events[4]["message"].startswith("API delivery to") and events[4]["run_id"] == "run-1"
    assert events[5]["message"].startswith("requeued for reprocessing from raw/")
    assert (events[7]["dag_id"], events[7]["task_id"]) == ("reprocess_files", "deliver_records")


def test_a_transient_failure_is_left_to_the_task_retry(setup, local_stack) -> None:
    stub, store, s3, contract, file_id, key = setup
    target = ApiTarget(base_url=stub, endpoint="/v1/steps", concurrency=1, backoff_s=0.01, max_attempts=2)
    actor = Actor(dag_id="process_x", run_id="run-9", task_id="deliver_records", try_number=1)
    hold(store, file_id, key, actor)
    requests.post(f"{stub}/_stub/faults", json={"fail_next": 2, "fail_status": 503}, timeout=5).raise_for_status()
    with pytest.raises(RetryableFailure, match="will be retried") as caught:
        deliver_files(store, s3, local_stack.bucket, contract, actor, [file_id], target, last_try=False)
    assert caught.value.report is not None and file_id in caught.value.report.retry
    assert store.reads.get_file(file_id)["status"] == Status.PROCESSING  # still held by the run for its retry
    retry = Actor(dag_id="process_x", run_id="run-9", task_id="deliver_records", try_number=2)
    report = deliver_files(store, s3, local_stack.bucket, contract, retry, [file_id], target, last_try=True)
    assert report.done == [file_id]
    stats = requests.get(f"{stub}/_stub/stats", timeout=5).json()
    assert stats["records_by_path"] == {"/v1/steps": 23} and stats["requests"] == 2 + 5
    assert store.reads.history(file_id)[-1]["try_number"] == 2


def test_the_same_bytes_with_other_processing_parameters_are_posted_as_a_new_job(setup, local_stack) -> None:
    """Idempotency keys follow the job: a re-upload with another page map posts its records; a retry of either
    job still posts nothing twice (the stub API dedupes by Idempotency-Key)."""
    stub, store, s3, contract, _, key = setup
    actor = Actor(dag_id="process_x", run_id="run-jobs", task_id="deliver_records", try_number=1)
    sha = uuid.uuid4().hex * 2
    ids = []
    for n, page_map in enumerate(({"part1": [1]}, {"part1": [1, 2]})):
        params = {"page_map": page_map}
        reg = store.register(feed=contract.name, source="s3", raw_key=f"raw/{contract.name}/2026/11/22/j{n}.pdf",
                             name=f"j{n}.pdf", sha256=sha, size_bytes=1, actor=Actor(), params=params,
                             job_params=params)
        assert reg.status == Status.DOWNLOADED
        hold(store, reg.file_id, key, actor)
        ids.append(reg.file_id)
    target = ApiTarget(base_url=stub, endpoint="/v1/steps", concurrency=1, backoff_s=0.01)
    assert deliver_files(store, s3, local_stack.bucket, contract, actor, ids, target).done == ids
    posted = requests.get(f"{stub}/_stub/requests", params={"path": "/v1/steps"}, timeout=5).json()
    assert len(posted) == 10 and len({r["idempotency_key"] for r in posted}) == 10  # 2 jobs of 5 batches
    assert requests.get(f"{stub}/_stub/stats", timeout=5).json()["records_by_path"] == {"/v1/steps": 46}
