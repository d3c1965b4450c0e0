"""The process step on real Postgres and S3 (moto): each raw object is downloaded once and hashed on the way,
and content that is not what was registered fails that file at once with a reason, never processed."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter

import boto3
import pytest

from filegate.contracts.model import Contract
from filegate.ingestion.arrivals import register_arrivals
from filegate.pipeline.steps import process_files
from filegate.status import Actor, Status, StatusStore

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(local_stack):
    store = StatusStore.connect(local_stack.db_url)
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    contract = Contract.model_validate({"name": f"steps_{uuid.uuid4().hex[:8]}", "description": "process step test",
                                        "schema": {"columns": [{"name": "n", "type": "int"}]}})
    return store, s3, contract


def test_a_raw_object_is_read_once_and_replaced_content_fails_with_a_reason(feed, local_stack) -> None:
    store, s3, contract = feed
    bucket = local_stack.bucket
    kept, replaced = (f"{contract.raw_prefix}2026/11/21/{name}.csv" for name in ("kept", "replaced"))
    for number, key in enumerate((kept, replaced)):
        s3.put_object(Bucket=bucket, Key=key, Body=f"n\n{number}\n".encode())
    actor = Actor(dag_id=f"process_{contract.name}", run_id="r1", task_id="process_files", try_number=1)
    queued = register_arrivals(store, s3, bucket, contract, actor)
    assert len(queued) == 2
    s3.put_object(Bucket=bucket, Key=replaced, Body=b"n\n1\n2\n3\n")  # someone else rewrote raw/

    reads: Counter[str] = Counter()
    s3.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: reads.update([params["Key"]]))
    report = process_files(store, s3, bucket, contract, actor, last_try=False)  # not retried: it would not help

    rows = {row["raw_key"]: row for row in store.reads.recent_files(feed=contract.name)}
    assert rows[kept]["id"] in report.done and rows[replaced]["id"] in report.failed and not report.retry
    assert reads[kept] == 1
    failed = store.reads.get_file(rows[replaced]["id"])
    assert failed["status"] == Status.FAILED
    assert "is not the file that was registered" in failed["error"]
    assert rows[replaced]["sha256"][:16] in failed["error"]
    assert "upload the new content under a new name" in failed["error"]


def test_registration_keeps_the_upload_parameters_on_the_file_row(feed, local_stack) -> None:
    """The upload endpoint sends its parameters as x-amz-meta-filegate-params; the file's page shows the row."""
    from filegate.storage.metadata import upload_metadata

    store, s3, contract = feed
    bucket, day = local_stack.bucket, f"{contract.raw_prefix}2026/11/21/"
    params = {"page_map": {"part1": [1, 2]}, "note": "é"}
    s3.put_object(Bucket=bucket, Key=f"{day}with_params.csv", Body=b"n\n1\n",
                  Metadata=upload_metadata(params, user="ana", original_name="with params.csv", note=None))
    s3.put_object(Bucket=bucket, Key=f"{day}plain.csv", Body=b"n\n2\n")
    s3.put_object(Bucket=bucket, Key=f"{day}bad_params.csv", Body=b"n\n3\n", Metadata={"filegate-params": "{oops"})
    register_arrivals(store, s3, bucket, contract, Actor())
    rows = {row["name"]: row for row in store.reads.recent_files(feed=contract.name)}
    assert rows["with_params.csv"]["params"] == params
    assert rows["plain.csv"]["params"] == {}
    assert rows["bad_params.csv"]["params"] == {} and rows["bad_params.csv"]["status"] == Status.QUEUED


def test_an_object_whose_sha256_s3_verified_is_read_once_from_arrival_to_processed(feed, local_stack) -> None:
    """Filegate's own writes (uploads, FTP pickups: S3StreamWriter) and producers that send a SHA-256 checksum
    leave S3 holding a full-object sha256 it verified: registering takes it from HeadObject, so the one GetObject
    of the raw object is process_files' download. Same content under another name is still a duplicate naming
    the first; an object without such a checksum is hashed at registration (one read more), as before."""
    from filegate.ingestion.transfer import S3StreamWriter

    store, s3, contract = feed
    bucket, day = local_stack.bucket, f"{contract.raw_prefix}2026/11/22/"
    uploaded, checksummed, copy, unchecked, claimed = (
        f"{day}{name}.csv" for name in ("a_uploaded", "b_checksummed", "c_copy", "d_unchecked", "e_claimed"))
    with S3StreamWriter(s3, bucket, uploaded, expected_size=None) as writer:
        writer.write(b"n\n1\n")
        writer.complete()
    s3.put_object(Bucket=bucket, Key=checksummed, Body=b"n\n2\n", ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key=copy, Body=b"n\n1\n", ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key=unchecked, Body=b"n\n3\n")
    # A sha256 in user metadata is nobody's check: trusted, it would make this new content a duplicate of a_uploaded.
    s3.put_object(Bucket=bucket, Key=claimed, Body=b"n\n4\n",
                  Metadata={"sha256": hashlib.sha256(b"n\n1\n").hexdigest()})
    reads: Counter[str] = Counter()
    s3.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: reads.update([params["Key"]]))

    actor = Actor(dag_id=f"process_{contract.name}", run_id="r1", task_id="process_files", try_number=1)
    queued = register_arrivals(store, s3, bucket, contract, actor)
    report = process_files(store, s3, bucket, contract, actor, file_ids=queued)

    rows = {row["raw_key"]: row for row in store.reads.recent_files(feed=contract.name)}
    assert sorted(report.done) == sorted(rows[key]["id"] for key in (uploaded, checksummed, unchecked, claimed))
    assert {key: reads[key] for key in (uploaded, checksummed, copy, unchecked, claimed)} == {
        uploaded: 1, checksummed: 1, copy: 0, unchecked: 2, claimed: 2}
    assert rows[copy]["status"] == Status.DUPLICATE
    assert f"file #{rows[uploaded]['id']} 'a_uploaded.csv'" in store.reads.get_file(rows[copy]["id"])["error"]
