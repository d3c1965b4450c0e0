from __future__ import annotations

import json

from filegate.alerts import dag_run_failed, file_needs_attention, run_summary, task_log_url

RUN = "manual__2026-11-20T10:00:00+00:00"


def test_task_log_url_is_airflow_3s() -> None:
    assert task_log_url("http://airflow.example:8080/", "process_orders", RUN, "deliver_records", 2) == (
        "http://airflow.example:8080/dags/process_orders/runs/manual__2026-11-20T10%3A00%3A00%2B00%3A00"
        "/tasks/deliver_records?try_number=2")
    assert task_log_url("http://a", "d", "r", "t", 1, map_index=3) == "http://a/dags/d/runs/r/tasks/t/mapped/3?try_number=1"


def test_file_alert_names_feed_file_reason_and_log() -> None:
    row = {"id": 12, "feed": "orders", "name": "orders_2026-11-20.csv", "raw_key": "raw/orders/x.csv",
           "status": "failed", "error": "API delivery to http://api/v1/orders incomplete: … #3 (HTTP 400)"}
    alert = file_needs_attention(row, dag_id="process_orders", run_id=RUN, task_id="deliver_records",
                                 log_url="http://a/log")
    body = json.loads(alert.message)
    assert body["feed"] == "orders" and body["file"] == "orders_2026-11-20.csv" and body["file_id"] == 12
    assert body["reason"].startswith("API delivery") and body["log_url"] == "http://a/log"
    assert "file_ids [12]" in body["next_step"]
    assert alert.attributes == {"kind": "file_failed", "feed": "orders", "dag_id": "process_orders"}
    assert alert.sns_subject.isascii() and len(alert.sns_subject) <= 100 and "\n" not in alert.sns_subject


def test_long_subjects_are_cut_and_made_ascii() -> None:
    row = {"id": 1, "feed": "orders", "name": "ü" * 300 + ".csv", "status": "quarantined", "error": "x" * 5000}
    alert = file_needs_attention(row, dag_id=None, run_id=None, task_id=None, log_url=None)
    assert alert.sns_subject.isascii() and len(alert.sns_subject) == 100
    assert len(json.loads(alert.message)["reason"]) == 2000


def test_dag_failure_and_summary() -> None:
    alert = dag_run_failed(dag_id="reprocess_files", run_id=RUN, reason="task_failure", failed_task="select_files",
                           log_url="http://a/l", run_url="http://a/r")
    assert json.loads(alert.message)["summary"] == f"DAG run reprocess_files / {RUN} failed at task select_files"
    files = [{"id": 1, "feed": "o", "name": "a", "status": "processed"},
             {"id": 2, "feed": "o", "name": "b", "status": "quarantined", "error": "bad"}]
    summary = run_summary(dag_id="process_o", run_id=RUN, files=files, run_url=None)
    assert json.loads(summary.message)["counts"] == {"processed": 1, "quarantined": 1}
    assert summary.subject == "Filegate: process_o run finished (1 processed, 1 quarantined)"


def test_schema_drift_alert_names_the_changes_and_versions() -> None:
    from filegate.alerts.messages import schema_drift

    row = {"id": 7, "feed": "events", "name": "events_2026-11-21.ndjson"}
    drift = {"policy": "warn", "from_version": 1, "to_version": 2,
             "summary": "1 schema change from version 1: column session_id added at position 7 (string, nullable)",
             "changes": [{"kind": "added", "column": "session_id", "message": "column session_id added at position 7",
                          "position": 7}]}
    alert = schema_drift(row, drift, dag_id="process_events", log_url="http://a/log")
    body = json.loads(alert.message)
    assert alert.kind == "schema_drift"
    assert alert.subject == "Filegate: events schema changed in events_2026-11-21.ndjson"
    assert alert.attributes == {"kind": "schema_drift", "feed": "events", "dag_id": "process_events"}
    assert (body["file_id"], body["from_version"], body["to_version"], body["policy"]) == (7, 1, 2, "warn")
    assert body["changes"] == [{"kind": "added", "column": "session_id",
                                "message": "column session_id added at position 7"}]
    assert body["summary"].startswith("events/events_2026-11-21.ndjson: 1 schema change from version 1")
    assert "schema_drift: freeze" in body["next_step"]
