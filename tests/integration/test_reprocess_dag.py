"""`reprocess_files` and the alerts, end to end with dag.test() on the real local stack.

A feed of its own (`reorders`, from a temporary feeds folder) keeps these files apart from process_orders' tests.
process_reorders first leaves one file `failed` (the API refuses one batch) and one `quarantined`; alerts go out
through SNS and are read back from a subscribed SQS queue. Then reprocess_files runs: dry run, the real run (only
the missing batch is posted), a re-run of a processed file (nothing posted), and bad params (a clear error, a
failed DAG run and its alert).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import boto3
import psycopg
import pytest
import requests
import yaml
from airflow_runs import migrated_airflow_env
from airflow_runs import run_dag as run_airflow_dag
from alert_inbox import AlertInbox

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "samples" / "orders"
DAY = "2026/11/22"
FEED = "reorders"
BASE_URL = "http://airflow.filegate.test:8080"


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_reprocess")
    feeds = tmp_path_factory.mktemp("feeds")
    contract = yaml.safe_load((ROOT / "include" / "feeds" / "orders.yaml").read_text())
    contract["name"] = FEED
    contract["destinations"]["api"].update({"endpoint": "/v1/reorders", "batch_size": 5, "concurrency": 1})
    (feeds / f"{FEED}.yaml").write_text(yaml.safe_dump(contract))
    return migrated_airflow_env(local_stack.env, home, AIRFLOW__API__BASE_URL=BASE_URL,
                                FILEGATE_FEEDS_DIR=str(feeds), FILEGATE_ALERT_ON_SUCCESS="true")


def run_dag(env: dict[str, str], dag_id: str, conf: dict | None = None) -> dict:
    return run_airflow_dag(env, dag_id, conf)


def stub_get(local_stack, what: str) -> dict | list:
    return requests.get(f"{local_stack.stub_url}/_stub/{what}", params={"path": "/v1/reorders"}, timeout=5).json()


def files(db_url: str) -> dict[str, dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM file WHERE feed = %s", (FEED,)).fetchall()
    return {r["name"]: r for r in rows}


def history(db_url: str, file_id: int) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM file_event WHERE file_id = %s ORDER BY id", (file_id,)).fetchall()


@pytest.fixture(scope="module")
def inbox(local_stack):
    box = AlertInbox(local_stack.moto_url, local_stack.env["FILEGATE_ALERT_TOPIC_ARN"])
    yield box
    box.close()


@pytest.fixture(scope="module")
def first_run(local_stack, airflow_env, inbox) -> dict:
    requests.post(f"{local_stack.stub_url}/_stub/reset", timeout=5).raise_for_status()
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for name in ("orders_2026-11-20.csv", "orders_wrong_columns.csv"):
        s3.upload_file(str(SAMPLES / name), local_stack.bucket, f"raw/{FEED}/{DAY}/{name}")
    # The API refuses the first batch (422): the file fails at once, naming the batch; the others are accepted.
    requests.post(f"{local_stack.stub_url}/_stub/faults", json={"fail_next": 1, "fail_status": 422},
                  timeout=5).raise_for_status()
    inbox.drain()
    outcome = run_dag(airflow_env, f"process_{FEED}")
    outcome["alerts"] = inbox.drain(expect=3)
    return outcome


def test_process_run_leaves_a_failed_and_a_quarantined_file(first_run, local_stack) -> None:
    assert first_run["state"] == "success", first_run["output"][-3000:]
    rows = files(local_stack.db_url)
    failed, quarantined = rows["orders_2026-11-20.csv"], rows["orders_wrong_columns.csv"]
    assert failed["status"] == "failed" and "1 failed: #1 (HTTP 422" in failed["error"]
    assert f"reprocess_files DAG (file_ids=[{failed['id']}])" in failed["error"]
    assert quarantined["status"] == "quarantined" and "missing column(s)" in quarantined["error"]
    assert stub_get(local_stack, "stats")["records_by_path"] == {"/v1/reorders": 7}  # batches 2 and 3 of 3


def test_alerts_for_failed_and_quarantined_files_and_the_run_summary(first_run, local_stack) -> None:
    by_kind = {a["body"]["alert"]: a for a in first_run["alerts"]}
    assert set(by_kind) == {"file_failed", "file_quarantined", "run_summary"}, first_run["alerts"]
    failed = by_kind["file_failed"]
    assert failed["subject"] == f"Filegate: {FEED} file orders_2026-11-20.csv failed"
    assert failed["body"]["feed"] == FEED and "HTTP 422" in failed["body"]["reason"]
    assert failed["body"]["log_url"].startswith(f"{BASE_URL}/dags/process_{FEED}/runs/")
    assert failed["body"]["log_url"].endswith("/tasks/deliver_records?try_number=1")
    assert failed["attributes"]["feed"] == FEED and failed["attributes"]["kind"] == "file_failed"
    quarantined = by_kind["file_quarantined"]["body"]
    assert quarantined["file"] == "orders_wrong_columns.csv" and "missing column(s)" in quarantined["reason"]
    assert quarantined["log_url"].endswith("/tasks/process_files?try_number=1")
    assert by_kind["run_summary"]["body"]["counts"] == {"failed": 1, "quarantined": 1}


def test_dry_run_lists_the_files_and_changes_nothing(first_run, local_stack, airflow_env) -> None:
    before = {n: (r["status"], r["updated_at"]) for n, r in files(local_stack.db_url).items()}
    outcome = run_dag(airflow_env, "reprocess_files", {"feed": FEED, "dry_run": True})
    assert outcome["state"] == "success"
    assert outcome["tasks"] == {"select_files": "success", "requeue_files": "skipped", "process_files": "skipped",
                                "deliver_records": "skipped"}
    assert "would reprocess 2 file(s)" in outcome["output"] and "orders_wrong_columns.csv" in outcome["output"]
    assert {n: (r["status"], r["updated_at"]) for n, r in files(local_stack.db_url).items()} == before
    assert stub_get(local_stack, "stats")["records_by_path"] == {"/v1/reorders": 7}


def test_reprocess_posts_only_the_missing_batch(first_run, local_stack, airflow_env, inbox) -> None:
    inbox.drain()
    outcome = run_dag(airflow_env, "reprocess_files", {"feed": FEED, "arrived_from": "2026-11-22",
                                                       "arrived_to": "2026-11-22"})
    assert outcome["state"] == "success", outcome["output"][-3000:]
    rows = files(local_stack.db_url)
    good, bad = rows["orders_2026-11-20.csv"], rows["orders_wrong_columns.csv"]
    assert good["status"] == "processed" and good["error"] is None
    assert bad["status"] == "quarantined"  # same bytes, same contract: quarantined again, with its reason
    assert stub_get(local_stack, "stats")["records_by_path"] == {"/v1/reorders": 12}
    posted = stub_get(local_stack, "requests")
    assert Counter(r["outcome"] for r in posted) == {"accepted": 3, "fail 422": 1}
    assert posted[-1]["idempotency_key"] == posted[0]["idempotency_key"]  # batch 1, the one refused before
    events = history(local_stack.db_url, good["id"])
    assert [e["to_status"] for e in events][-4:] == ["failed", "queued", "processing", "processed"]
    for event in events[-3:]:
        assert event["dag_id"] == "reprocess_files" and event["run_id"] == outcome["run_id"]
        assert event["task_id"] in {"requeue_files", "deliver_records"} and event["try_number"] == 1
    alerts = inbox.drain(expect=2)
    kinds = Counter(a["body"]["alert"] for a in alerts)
    assert kinds == {"file_quarantined": 1, "run_summary": 1}
    summary = next(a for a in alerts if a["body"]["alert"] == "run_summary")["body"]
    assert summary["counts"] == {"processed": 1, "quarantined": 1}


def test_reprocessing_a_processed_file_posts_nothing(first_run, local_stack, airflow_env) -> None:
    good = files(local_stack.db_url)["orders_2026-11-20.csv"]
    if good["status"] != "processed":
        pytest.skip("depends on test_reprocess_posts_only_the_missing_batch")
    before = stub_get(local_stack, "stats")
    outcome = run_dag(airflow_env, "reprocess_files", {"file_ids": [good["id"]], "statuses": ["processed"]})
    assert outcome["state"] == "success"
    assert files(local_stack.db_url)["orders_2026-11-20.csv"]["status"] == "processed"
    assert stub_get(local_stack, "stats") == before
    assert "3 already acknowledged" in history(local_stack.db_url, good["id"])[-1]["message"]


@pytest.mark.parametrize(("conf", "message"), [
    ({"feed": "nope"}, "unknown feed 'nope'; known feeds: reorders"),
    ({"feed": FEED, "statuses": ["duplicate"]}, "duplicate files cannot be reprocessed"),
    ({"feed": FEED, "arrived_from": "2030-01-01"}, "nothing to reprocess: no file matches"),
])
def test_bad_params_fail_clearly_and_alert(first_run, local_stack, airflow_env, inbox, conf, message) -> None:
    inbox.drain()
    statuses = {n: r["status"] for n, r in files(local_stack.db_url).items()}
    outcome = run_dag(airflow_env, "reprocess_files", conf)
    assert outcome["state"] == "failed"
    assert outcome["tasks"]["select_files"] == "failed"
    assert message in outcome["output"]
    assert {n: r["status"] for n, r in files(local_stack.db_url).items()} == statuses
    alerts = {a["body"]["alert"]: a["body"] for a in inbox.drain(expect=2)}
    assert message in alerts["task_failed"]["reason"]
    assert alerts["task_failed"]["log_url"].endswith("/tasks/select_files?try_number=1")
    assert alerts["dag_run_failed"]["dag_id"] == "reprocess_files"
    assert alerts["dag_run_failed"]["failed_task"] == "select_files"
    assert alerts["dag_run_failed"]["run_url"].startswith(f"{BASE_URL}/dags/reprocess_files/runs/")
