"""Schema drift on the real stack (Postgres, S3 on moto, SNS → SQS): each feed keeps its schema versions with the
file that introduced each one, a drifted file gets a drift record and its summary JSON says what changed, and the
contract's policy decides: `evolve` accepts it as a new version, `warn` also alerts, `freeze` quarantines it with
the diff as its reason (its raw copy stays). Two files of a feed with the same new schema make one version."""

from __future__ import annotations

import json
import threading
import uuid

import boto3
import psycopg
import pytest
from alert_inbox import AlertInbox
from psycopg.rows import dict_row

from filegate.contracts.model import Contract
from filegate.ingestion.arrivals import register_arrivals
from filegate.pipeline.steps import process_files
from filegate.status import Actor, Status, StatusStore

pytestmark = pytest.mark.integration

V1 = "id,amount,ordered_on\n1,2.50,2026-11-20\n2,7.25,2026-11-21\n3,1.00,2026-11-21\n"


class Feed:
    """One feed of its own (inferred schema, the given policy) and helpers to deliver and process its files."""

    def __init__(self, local_stack, policy: str) -> None:
        self.store = StatusStore.connect(local_stack.db_url)
        self.s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.bucket = local_stack.bucket
        self.db_url = local_stack.db_url
        self.contract = Contract.model_validate({"name": f"drift_{policy}_{uuid.uuid4().hex[:6]}",
                                                 "description": "schema drift test", "schema_drift": policy})
        self.actor = Actor(dag_id=f"process_{self.contract.name}", run_id="r1", task_id="process_files",
                           try_number=1)

    def deliver(self, **files: str) -> dict[str, int]:
        """Puts the files in raw/, processes them together, returns their ids by name."""
        for name, text in files.items():
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.contract.raw_prefix}2026/11/22/{name}.csv",
                               Body=text.encode())
        ids = register_arrivals(self.store, self.s3, self.bucket, self.contract, self.actor)
        self.report = process_files(self.store, self.s3, self.bucket, self.contract, self.actor, file_ids=ids)
        rows = {r["name"]: r for r in self.store.reads.recent_files(feed=self.contract.name)}
        return {name: rows[f"{name}.csv"]["id"] for name in files}

    def sql(self, query: str, *args: object) -> list[dict]:
        with psycopg.connect(self.db_url, row_factory=dict_row) as conn:
            return conn.execute(query, args).fetchall()

    def versions(self) -> list[dict]:
        return self.sql("SELECT version, file_id, columns FROM schema_version WHERE feed = %s ORDER BY version",
                        self.contract.name)

    def summary(self, file_id: int) -> dict:
        key = self.store.reads.get_file(file_id)["outputs"]["summary"]
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


@pytest.fixture
def inbox(local_stack):
    box = AlertInbox(local_stack.moto_url, local_stack.env["FILEGATE_ALERT_TOPIC_ARN"])
    yield box
    box.close()


def test_the_first_file_is_version_one_and_the_same_schema_adds_nothing(local_stack) -> None:
    feed = Feed(local_stack, "freeze")
    first = feed.deliver(a=V1)["a"]
    assert [(v["version"], v["file_id"]) for v in feed.versions()] == [(1, first)]
    assert [c["name"] for c in feed.versions()[0]["columns"]] == ["id", "amount", "ordered_on"]
    assert [c["type"] for c in feed.versions()[0]["columns"]] == ["int", "float", "date"]
    again = feed.deliver(b=V1.replace("2.50", "9.99"))["b"]
    assert feed.store.reads.get_file(again)["status"] == Status.PROCESSING  # accepted, handed to delivery
    assert len(feed.versions()) == 1 and feed.store.schemas.drift_of(again) is None
    assert feed.summary(again)["schema_drift"] is None


def test_evolve_accepts_a_new_column_as_version_two_with_a_drift_record(local_stack) -> None:
    feed = Feed(local_stack, "evolve")
    first = feed.deliver(a=V1)["a"]
    added = feed.deliver(b="id,amount,ordered_on,channel\n4,3.00,2026-11-22,web\n")["b"]
    assert feed.report.done == [added] and feed.report.drift_warned == []
    assert [(v["version"], v["file_id"]) for v in feed.versions()] == [(1, first), (2, added)]
    record = feed.store.schemas.drift_of(added)
    assert (record["policy"], record["action"], record["from_version"], record["to_version"]) == (
        "evolve", "evolved", 1, 2)
    assert [(c["kind"], c["column"]) for c in record["changes"]] == [("added", "channel")]
    drift = feed.summary(added)["schema_drift"]
    assert drift["kinds"] == ["added"] and drift["verdict"] == "evolve" and drift["from_version"] == 1
    assert feed.store.schemas.current(feed.contract.name)["version"] == 2


def test_warn_accepts_the_file_and_its_alert_reaches_sns_subscribers(local_stack, inbox, monkeypatch) -> None:
    from filegate.orchestration.notify import alert_schema_drift

    feed = Feed(local_stack, "warn")
    feed.deliver(a=V1)
    renamed = feed.deliver(b="id,amount_eur,ordered_on\n5,4.00,2026-11-22\n")["b"]
    assert feed.report.done == [renamed] and feed.report.drift_warned == [renamed]
    record = feed.store.schemas.drift_of(renamed)
    assert record["action"] == "warned" and record["to_version"] == 2
    assert [(c["kind"], c["column"], c.get("from")) for c in record["changes"]] == [
        ("renamed", "amount_eur", "amount")]

    for name in ("AIRFLOW_CONN_AWS_DEFAULT", "FILEGATE_ALERT_TOPIC_ARN"):
        monkeypatch.setenv(name, local_stack.env[name])
    inbox.drain()
    assert alert_schema_drift(feed.store, feed.report.drift_warned, {}) == 1
    [alert] = [a for a in inbox.drain(expect=1) if a["body"].get("feed") == feed.contract.name]
    assert alert["attributes"] == {"kind": "schema_drift", "feed": feed.contract.name}
    assert alert["subject"] == f"Filegate: {feed.contract.name} schema changed in b.csv"
    body = alert["body"]
    assert (body["file_id"], body["from_version"], body["to_version"], body["policy"]) == (renamed, 1, 2, "warn")
    assert body["changes"][0]["kind"] == "renamed"
    assert "column amount renamed to amount_eur?" in body["summary"]


def test_freeze_quarantines_the_file_with_the_diff_and_keeps_the_version(local_stack) -> None:
    feed = Feed(local_stack, "freeze")
    feed.deliver(a=V1)
    frozen = feed.deliver(b="ordered_on,id,amount\n2026-11-22,6,x\n")["b"]
    assert feed.report.quarantined == [frozen]
    row = feed.store.reads.get_file(frozen)
    assert row["status"] == Status.QUARANTINED
    assert row["error"].startswith(f"schema drift refused (feed {feed.contract.name} has schema_drift: freeze): "
                                   "2 schema changes from version 1: column amount type widened: float → string; "
                                   "columns reordered (ordered_on 3→1 among shared columns)")
    assert "parquet" not in row["outputs"]  # nothing published
    feed.s3.head_object(Bucket=feed.bucket, Key=row["raw_key"])  # the raw copy stays
    assert feed.summary(frozen)["schema_drift"]["verdict"] == "freeze"
    record = feed.store.schemas.drift_of(frozen)
    assert (record["action"], record["to_version"]) == ("frozen", None)
    assert len(feed.versions()) == 1


def test_two_files_with_the_same_new_schema_processed_at_once_make_one_version(local_stack) -> None:
    feed = Feed(local_stack, "evolve")
    feed.deliver(a=V1)
    new = "id,amount,ordered_on,channel\n7,1.00,2026-11-22,shop\n"
    ids = feed.deliver(b=new, c=new.replace("7,", "8,"), d=new.replace("7,", "9,"))
    assert sorted(feed.report.done) == sorted(ids.values())
    assert [v["version"] for v in feed.versions()] == [1, 2]
    assert {feed.store.schemas.drift_of(i)["to_version"] for i in ids.values()} == {2}


def test_concurrent_upserts_of_one_schema_never_make_two_versions(local_stack) -> None:
    feed = Feed(local_stack, "evolve")
    names = {f"f{n}": V1.replace("2.50", f"{n}.50") for n in range(8)}
    for name, text in names.items():
        feed.s3.put_object(Bucket=feed.bucket, Key=f"{feed.contract.raw_prefix}2026/11/22/{name}.csv",
                           Body=text.encode())
    file_ids = register_arrivals(feed.store, feed.s3, feed.bucket, feed.contract, Actor())
    columns = [{"name": "x", "type": "int", "nullable": False, "declared": False}]
    barrier = threading.Barrier(len(file_ids))
    versions: list[int | None] = []

    def upsert(file_id: int) -> None:
        barrier.wait()
        versions.append(feed.store.schemas.record(file_id, feed.contract.name, columns, accepted=True))

    threads = [threading.Thread(target=upsert, args=(i,)) for i in file_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert versions == [1] * len(file_ids)
    [version] = feed.versions()
    assert version["file_id"] in file_ids
    assert feed.store.schemas.current(feed.contract.name)["file_id"] == version["file_id"]


def test_a_frozen_file_is_accepted_by_reprocessing_it_once_the_feed_evolves(local_stack) -> None:
    """The way out docs/schema-drift.md gives: set the policy to evolve (or warn) and reprocess the file."""
    feed = Feed(local_stack, "freeze")
    feed.deliver(a=V1)
    frozen = feed.deliver(b="id,amount,ordered_on,channel\n4,3.00,2026-11-22,web\n")["b"]
    assert feed.store.reads.get_file(frozen)["status"] == Status.QUARANTINED

    feed.contract = feed.contract.model_copy(update={"schema_drift": "evolve"})
    assert feed.store.queue([frozen], feed.actor, message="reprocess: schema change accepted") == [frozen]
    report = process_files(feed.store, feed.s3, feed.bucket, feed.contract, feed.actor, file_ids=[frozen])
    assert report.done == [frozen]
    record = feed.store.schemas.drift_of(frozen)
    assert (record["policy"], record["action"], record["from_version"], record["to_version"]) == (
        "evolve", "evolved", 1, 2)
    assert [(v["version"], v["file_id"]) for v in feed.versions()][1] == (2, frozen)
