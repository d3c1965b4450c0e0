"""Expected deliveries on the real stack: slot states in Postgres, a file registered through S3 counted for its
slot at once (a missed slot turning late with its delay), and the late/missed alerts arriving through SNS → SQS,
with the delay from a slot's change to the alert in the queue measured. The `watch_deliveries` DAG itself runs
once with dag.test() (its task publishes through Airflow's SnsHook)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from alert_inbox import AlertInbox
from psycopg.rows import dict_row

from filegate.alerts import publish
from filegate.contracts.model import Contract
from filegate.ingestion.arrivals import register_arrivals
from filegate.schedule.watch import watch
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor(dag_id="test", run_id="slots", task_id="t")


def contract(name: str, **expect: Any) -> Contract:
    return Contract.model_validate({"name": name, "description": "expected-delivery test feed",
                                    "source": {"kind": "s3", "pattern": "*.csv"}, "expect": expect})


@pytest.fixture
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


@pytest.fixture
def s3(local_stack) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def inbox(local_stack):
    box = AlertInbox(local_stack.moto_url, local_stack.env["FILEGATE_ALERT_TOPIC_ARN"])
    yield box
    box.close()


@pytest.fixture
def sns_publish(local_stack):
    sns = boto3.client("sns", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    topic = local_stack.env["FILEGATE_ALERT_TOPIC_ARN"]
    return lambda alert: bool(publish(sns, topic, alert))


def slots_of(db_url: str, feed: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT s.*, array(SELECT file_id FROM delivery_slot_file l WHERE l.slot_id = s.id)"
                            " AS file_ids FROM delivery_slot s WHERE feed = %s ORDER BY expected_at",
                            (feed,)).fetchall()


def drop(s3: Any, bucket: str, feed: str, name: str) -> str:
    key = keys.raw_key(feed, datetime.now(UTC).date(), name)
    s3.put_object(Bucket=bucket, Key=key, Body=f"id\n{uuid.uuid4().hex}\n".encode())
    return key


def midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_missed_slot_turns_late_when_its_file_registers_and_both_are_alerted(
        local_stack, store, s3, inbox, sns_publish) -> None:
    feed = f"slots_{uuid.uuid4().hex[:8]}"
    # Today's 00:00 UTC slot with no grace is past due whenever the test runs; the name pattern ties the file to it.
    expect_late = contract(feed, cron="0 0 * * *", timezone="UTC", grace_minutes=0,
                           pattern="late_{slot:%Y%m%d}.csv")
    today = midnight()

    report = watch(store, [expect_late], sns_publish)
    slots = {s["expected_at"]: s for s in slots_of(local_stack.db_url, feed)}
    assert slots[today]["state"] == "missed" and slots[today]["missed_at"] is not None
    assert slots[today + timedelta(days=1)]["state"] == "expected"  # tomorrow's, on the calendar ahead
    assert slots[today - timedelta(days=3)]["state"] == "missed"  # a week back is recorded ...
    assert report.alerts_sent == 1 and report.alerts_skipped >= 6  # ... but only the last day's is announced
    [missed] = inbox.drain(expect=1)
    assert missed["subject"] == f"Filegate: {feed} delivery {today:%Y-%m-%d} 00:00 UTC missed"
    assert missed["attributes"] == {"kind": "delivery_missed", "feed": feed}
    assert missed["body"]["pattern"] == f"late_{today:%Y%m%d}.csv" and missed["body"]["files"] == []

    # The file comes after all, registered from S3 like any arrival: the slot turns late at once, delay recorded.
    key = drop(s3, local_stack.bucket, feed, f"late_{today:%Y%m%d}.csv")
    register_arrivals(store, s3, local_stack.bucket, expect_late, ACTOR, event_keys=[key], sweep=False)
    [file_row] = store.reads.find_by_raw_keys([key]).values()
    slot = {s["expected_at"]: s for s in slots_of(local_stack.db_url, feed)}[today]
    assert slot["state"] == "late" and slot["file_ids"] == [file_row["id"]]
    assert slot["satisfied_at"] == file_row["created_at"]
    assert slot["delay_seconds"] == int((file_row["created_at"] - today).total_seconds())
    assert slot["missed_at"] is not None  # the history of having been missed stays

    watch(store, [expect_late], sns_publish)
    [late] = inbox.drain(expect=1)
    received = datetime.now(UTC)
    assert late["attributes"]["kind"] == "delivery_late"
    assert late["body"]["files"][0]["file"] == f"late_{today:%Y%m%d}.csv"
    assert late["body"]["delay_seconds"] == slot["delay_seconds"]
    delay = (received - slot["state_changed_at"]).total_seconds()
    print(f"\nslot turned late → alert in the SQS queue (watch run right after): {delay:.2f} s")
    assert delay < 60
    assert watch(store, [expect_late], sns_publish).alerts_sent == 0  # announced once
    assert inbox.drain(timeout_s=2) == []


def test_files_on_time_make_a_slot_arrived_and_extra_names_count_for_no_slot(local_stack, store, s3,
                                                                              sns_publish) -> None:
    feed = f"slots_{uuid.uuid4().hex[:8]}"
    # Two files per slot, a week's grace: today's 00:00 slot is on time whatever the hour.
    on_time = contract(feed, cron="0 0 * * *", files=2, grace_minutes=7 * 24 * 60, pattern="part*_{slot:%Y%m%d}.csv")
    today = midnight()
    watch(store, [on_time], sns_publish)
    first = drop(s3, local_stack.bucket, feed, f"part1_{today:%Y%m%d}.csv")
    other = drop(s3, local_stack.bucket, feed, "unrelated.csv")
    register_arrivals(store, s3, local_stack.bucket, on_time, ACTOR, event_keys=[first, other], sweep=False)
    slot = {s["expected_at"]: s for s in slots_of(local_stack.db_url, feed)}[today]
    assert slot["state"] == "expected" and len(slot["file_ids"]) == 1  # one of two
    second = drop(s3, local_stack.bucket, feed, f"part2_{today:%Y%m%d}.csv")
    register_arrivals(store, s3, local_stack.bucket, on_time, ACTOR, event_keys=[second], sweep=False)
    slot = {s["expected_at"]: s for s in slots_of(local_stack.db_url, feed)}[today]
    assert slot["state"] == "arrived" and len(slot["file_ids"]) == 2
    assert sum(len(s["file_ids"]) for s in slots_of(local_stack.db_url, feed)) == 2  # unrelated.csv counts nowhere


def test_the_watch_deliveries_dag_announces_a_missed_slot(local_stack, store, inbox, tmp_path) -> None:
    feed = f"slots_{uuid.uuid4().hex[:8]}"
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / f"{feed}.yaml").write_text(f"""
name: {feed}
description: a feed whose files never come (watch_deliveries DAG test)
source: {{kind: s3, pattern: "*.csv"}}
expect: {{cron: "0 0 * * *", timezone: UTC, grace_minutes: 0, pattern: "never_{{slot:%Y%m%d}}.csv"}}
""")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "watch_deliveries.py").symlink_to(ROOT / "dags" / "watch_deliveries.py")
    env = {**os.environ, **local_stack.env, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "FILEGATE_FEEDS_DIR": str(feeds),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db"}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "integration" / "dag_test_runner.py"), str(dags),
                             "watch_deliveries"], env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"watch": "success"' in result.stdout.strip().splitlines()[-1]
    [missed] = inbox.drain(expect=1)
    assert missed["attributes"] == {"kind": "delivery_missed", "feed": feed}
    slot = {s["expected_at"]: s for s in slots_of(local_stack.db_url, feed)}[midnight()]
    assert slot["state"] == "missed" and slot["alerted_state"] == "missed"
    print(f"\nwatch_deliveries run with dag.test() (Airflow start-up included): {took:.1f} s")
