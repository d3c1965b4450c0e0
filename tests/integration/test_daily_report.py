"""The daily_report DAG with dag.test() on a day with known contents (numbers asserted) and on an empty day:
report.html/.json/.csv in S3 under reports/<day>/, and the SNS notification."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest
from airflow_runs import migrated_airflow_env

from filegate.status.store import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 14)
EMPTY_DAY = date(2026, 3, 10)
ACTOR = Actor(dag_id="process_rep_a", run_id="scheduled__2026-03-14", task_id="process_files", try_number=1)
HOSTILE = "API down: HTTP 503 <script>alert(1)</script> & more"
RUNNER = """
import json, sys
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.dags["daily_report"].test(logical_date=datetime.fromisoformat(sys.argv[2]).replace(tzinfo=timezone.utc))
print(json.dumps({"state": str(run.state), "start": run.data_interval_start.isoformat(),
                  "end": run.data_interval_end.isoformat(),
                  "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}))
"""


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def known_day(local_stack) -> dict[str, int]:
    """rep_a: 2 processed, 1 quarantined, 1 failed; rep_b: 1 processed, 1 duplicate of it; plus two files just
    outside the day. Timestamps are set so the latency percentiles are known."""
    store = StatusStore.connect(local_stack.db_url)
    ids: dict[str, int] = {}

    def add(feed: str, name: str, sha: str) -> int:
        reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/2026/03/14/{name}", name=name, sha256=sha,
                             size_bytes=10, actor=ACTOR)
        ids[name] = reg.file_id
        if reg.status == Status.DOWNLOADED:
            store.queue([reg.file_id], ACTOR)
            store.claim(ACTOR, feed=feed, file_ids=[reg.file_id])
        return reg.file_id

    a1, a2, a3, a4 = (add("rep_a", f"a{n}.csv", f"{n:064x}") for n in range(1, 5))
    store.record_quality(a1, rows_total=100, rows_valid=90, rows_rejected=10, inferred_schema={}, column_stats={},
                         issues=[{"column": "sku", "rule": "regex", "count": 7}, {"column": "qty", "rule": "min",
                                                                                  "count": 3}])
    store.record_quality(a2, rows_total=50, rows_valid=50, rows_rejected=0, inferred_schema={}, column_stats={},
                         issues=[])
    store.record_quality(a3, rows_total=10, rows_valid=2, rows_rejected=8, inferred_schema={}, column_stats={},
                         issues=[{"column": "sku", "rule": "regex", "count": 8}])
    for file_id, code, ms in ((a1, 500, 100.0), (a1, 200, 50.0), (a2, 200, 30.0)):
        store.record_api_call(file_id=file_id, batch_no=0, idempotency_key=f"r-{file_id}", url="http://x/v1",
                              records=1, attempt=1, status_code=code, latency_ms=ms, acknowledged=code == 200)
    store.transition(a1, Status.PROCESSED, ACTOR)
    store.transition(a2, Status.PROCESSED, ACTOR)
    store.transition(a3, Status.QUARANTINED, ACTOR, error="too many bad rows: 80% > 20%")
    store.transition(a4, Status.FAILED, ACTOR, error=HOSTILE)
    b1 = add("rep_b", "b1.csv", "b" * 64)
    store.record_quality(b1, rows_total=5, rows_valid=5, rows_rejected=0, inferred_schema={}, column_stats={},
                         issues=[])
    store.transition(b1, Status.PROCESSED, ACTOR)
    b2 = add("rep_b", "b1-again.csv", "b" * 64)
    before = add("rep_a", "before.csv", "c" * 64)
    after = add("rep_a", "after.csv", "d" * 64)
    timing = {a1: (at(DAY, 1), 60), a2: (at(DAY, 2), 120), a3: (at(DAY, 3), 180), a4: (at(DAY, 23, 59, 59), 240),
              b1: (at(DAY, 0), 10), b2: (at(DAY, 5), 1),
              before: (at(DAY - timedelta(days=1), 23, 59, 59), 5), after: (at(DAY + timedelta(days=1), 0), 5)}
    with psycopg.connect(local_stack.db_url) as conn:  # place the rows on the day, as if they had arrived then
        for file_id, (created, seconds) in timing.items():
            conn.execute("UPDATE file SET created_at = %s, finished_at = %s WHERE id = %s",
                         (created, created + timedelta(seconds=seconds), file_id))
    return ids


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_report")
    # The stack starts daily_report a week before today; these fixed days need an earlier start date.
    return migrated_airflow_env(local_stack.env, home, AIRFLOW__API__BASE_URL="http://127.0.0.1:8080",
                                FILEGATE_REPORT_START_DATE=(EMPTY_DAY - timedelta(days=1)).isoformat())


@pytest.fixture(scope="module")
def aws(local_stack):
    kwargs = {"endpoint_url": local_stack.moto_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    return boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs), boto3.client("sns", **kwargs)


@pytest.fixture(scope="module")
def alerts_queue(aws, local_stack) -> str:
    _, sqs, sns = aws
    url = sqs.create_queue(QueueName="report-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=local_stack.env["FILEGATE_ALERT_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)
    return url


def run_report(env: dict[str, str], day: date) -> dict:
    # A manual run at midnight covers the day before it, exactly as the scheduled run of that day does.
    logical = datetime.combine(day + timedelta(days=1), datetime.min.time()).isoformat()
    result = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT / "dags"), logical], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "success", outcome
    # A day before the DAG's start date gives a "successful" run with no tasks at all.
    assert outcome["tasks"] == {"build_report": "success", "notify": "success"}, outcome
    assert outcome["start"].startswith(day.isoformat()) and outcome["end"].startswith(
        (day + timedelta(days=1)).isoformat())
    return outcome


def notifications(sqs, url: str) -> list[dict]:
    found = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if found:
            break
    return found


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def known_report(known_day, airflow_env, aws, alerts_queue, local_stack) -> dict:
    run_report(airflow_env, DAY)
    s3, sqs, _ = aws
    return {"json": json.loads(read(s3, local_stack.bucket, f"reports/{DAY}/report.json")),
            "html": read(s3, local_stack.bucket, f"reports/{DAY}/report.html").decode(),
            "csv": list(csv.DictReader(io.StringIO(read(s3, local_stack.bucket, f"reports/{DAY}/report.csv")
                                                   .decode()))),
            "failures_csv": read(s3, local_stack.bucket, f"reports/{DAY}/failures.csv").decode(),
            "notifications": notifications(sqs, alerts_queue)}


def test_known_day_totals(known_report) -> None:
    totals = known_report["json"]["totals"]
    assert totals == {"files": 6, "by_status": {"duplicate": 1, "failed": 1, "processed": 3, "quarantined": 1},
                      "rows_in": 165, "rows_valid": 147, "rows_rejected": 18, "api_calls": 3,
                      "api_success_rate": pytest.approx(2 / 3), "failures": 2}


def test_known_day_per_feed(known_report) -> None:
    feeds = {f["feed"]: f for f in known_report["json"]["feeds"]}
    assert set(feeds) == {"rep_a", "rep_b"}
    a = feeds["rep_a"]
    assert a["files"] == 4 and a["by_status"] == {"failed": 1, "processed": 2, "quarantined": 1}
    assert (a["rows_in"], a["rows_valid"], a["rows_rejected"]) == (160, 142, 18)
    assert (a["api_calls"], a["api_ok"]) == (3, 2)
    assert a["api_latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0}  # of 30, 50, 100 ms
    assert a["processing_latency_s"] == {"p50": 150.0, "p95": 231.0, "max": 240.0}  # of 60, 120, 180, 240 s
    b = feeds["rep_b"]
    assert b["by_status"] == {"duplicate": 1, "processed": 1} and b["api_success_rate"] is None


def test_known_day_issues_and_failures(known_report) -> None:
    report = known_report["json"]
    assert [(i["feed"], i["column"], i["rule"], i["rows"], i["files"]) for i in report["top_issues"]] == [
        ("rep_a", "sku", "regex", 15, 2), ("rep_a", "qty", "min", 3, 1)]
    assert report["failures_total"] == 2
    assert {(f["name"], f["status"], f["reason"]) for f in report["failures"]} == {
        ("a3.csv", "quarantined", "too many bad rows: 80% > 20%"), ("a4.csv", "failed", HOSTILE)}


def test_html_has_charts_and_escapes_every_value(known_report) -> None:
    html = known_report["html"]
    assert html.count("<svg") == 4 and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing loaded from outside
    assert "Filegate daily report — 2026-03-14" in html


def test_csv_rows_per_feed_and_total(known_report) -> None:
    rows = {r["feed"]: r for r in known_report["csv"]}
    assert set(rows) == {"rep_a", "rep_b", "TOTAL"}
    assert (rows["rep_a"]["processed"], rows["rep_a"]["failed"], rows["rep_a"]["api_p95_ms"]) == ("2", "1", "95.0")
    assert (rows["TOTAL"]["files"], rows["TOTAL"]["rows_valid"]) == ("6", "147")
    assert "a4.csv" in known_report["failures_csv"]


def test_notification_has_headline_and_location(known_report, local_stack) -> None:
    [message] = [m for m in known_report["notifications"] if m["day"] == str(DAY)]
    assert (message["files"], message["failures"], message["rows_valid"]) == (6, 2, 147)
    assert message["report"]["report.html"] == f"s3://{local_stack.bucket}/reports/{DAY}/report.html"
    assert message["ui"] == f"http://127.0.0.1:8080/filegate/api/reports/{DAY}/report.html"


def test_empty_day(airflow_env, aws, alerts_queue, local_stack) -> None:
    run_report(airflow_env, EMPTY_DAY)
    s3, sqs, _ = aws
    report = json.loads(read(s3, local_stack.bucket, f"reports/{EMPTY_DAY}/report.json"))
    assert report["feeds"] == [] and report["failures"] == [] and report["top_issues"] == []
    assert report["totals"] == {"files": 0, "by_status": {}, "rows_in": 0, "rows_valid": 0, "rows_rejected": 0,
                                "api_calls": 0, "api_success_rate": None, "failures": 0}
    html = read(s3, local_stack.bucket, f"reports/{EMPTY_DAY}/report.html").decode()
    assert "No files arrived on this day." in html
    rows = list(csv.DictReader(io.StringIO(read(s3, local_stack.bucket, f"reports/{EMPTY_DAY}/report.csv").decode())))
    assert [r["feed"] for r in rows] == ["TOTAL"] and rows[0]["files"] == "0"
    assert any(m["day"] == str(EMPTY_DAY) and m["files"] == 0 for m in notifications(sqs, alerts_queue))
