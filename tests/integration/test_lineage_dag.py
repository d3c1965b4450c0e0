"""A file through process_orders on the real local stack: its OpenLineage events reach the stack's receiver
through the provider's HTTP transport (valid against the spec's rules, parent = the Airflow task run the
provider itself reported), and its asset event (with the file's extra) starts the downstream DAG."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from airflow_runs import migrated_airflow_env, run_dag
from openlineage_schema import problems

from filegate.orchestration.webapp.lineage_view import file_lineage
from filegate.status.store import StatusStore
from filegate_stack.client_env import openlineage_env

pytestmark = pytest.mark.integration
BUCKET = "fg-lineage"  # its own bucket: other tests count the objects and API records of the shared one
DAY = "2026/11/25"
NAME = "orders_lineage_2026-11-25.csv"


def orders_csv() -> bytes:
    rows = ["order_id,order_date,customer_email,sku,quantity,unit_price,currency"]
    rows += [f"{770000 + n},2026-11-25,buyer{n}@example.com,ABC-{1000 + n},{1 + n % 5},9.99,EUR" for n in range(19)]
    rows.append("770099,2026-11-25,late@example.com,ABC-9999,0,9.99,EUR")  # quantity 0 < min 1: rejected
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def lineage_run(local_stack, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow-lineage")
    receiver = local_stack.env["FILEGATE_LINEAGE_URL"]
    # DAGs paused but the downstream one, so the scheduler loop below starts nothing else.
    env = migrated_airflow_env(local_stack.env, home, FILEGATE_BUCKET=BUCKET, **openlineage_env(receiver),
                               AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True")
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    requests.post(f"{receiver}/_receiver/reset", timeout=5).raise_for_status()
    # Every DAG and its asset references in the metadata database, as the dag-processor would leave them.
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True,
                   capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "airflow", "dags", "unpause", "refresh_orders_mart"], env=env, check=True,
                   capture_output=True, timeout=300)
    s3.put_object(Bucket=BUCKET, Key=f"raw/orders/{DAY}/{NAME}", Body=orders_csv())
    outcome = run_dag(env, "process_orders")
    with sqlite3.connect(home / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        outcome["asset_events"] = [dict(r) for r in db.execute(
            "SELECT a.name, a.uri, e.extra, e.source_dag_id, e.source_task_id FROM asset_event e"
            " JOIN asset a ON a.id = e.asset_id ORDER BY e.id")]
    # One scheduler loop turns queued asset events into the downstream DAG's run.
    subprocess.run([sys.executable, "-m", "airflow", "scheduler", "--num-runs", "1", "--skip-serve-logs"],
                   env=env, capture_output=True, timeout=300)
    with sqlite3.connect(home / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        outcome["downstream"] = [dict(r) for r in db.execute(
            "SELECT r.run_id, r.run_type, e.extra FROM dag_run r"
            " JOIN dagrun_asset_event d ON d.dag_run_id = r.id JOIN asset_event e ON e.id = d.event_id"
            " WHERE r.dag_id = 'refresh_orders_mart'")]
    outcome["events"] = requests.get(f"{receiver}/api/v1/lineage", timeout=5).json()["events"]
    # Kept beside the run for a reader (docs/lineage.md shows one such event).
    (Path(home) / "received-events.json").write_text(json.dumps(outcome["events"], indent=2))
    return outcome


def file_events(lineage_run) -> list[dict]:
    return [e for e in lineage_run["events"]
            if (e["run"].get("facets") or {}).get("filegate", {}).get("name") == NAME]


def test_the_run_succeeds(lineage_run) -> None:
    assert lineage_run["state"] == "success", lineage_run["output"][-3000:]


def test_the_file_run_is_a_start_and_a_complete_with_its_inputs_and_outputs(lineage_run, local_stack) -> None:
    events = file_events(lineage_run)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    complete = events[-1]
    assert complete["job"]["namespace"] == "filegate-local" and complete["job"]["name"] == "filegate.orders"
    raw = complete["inputs"][0]
    assert (raw["namespace"], raw["name"]) == (f"s3://{BUCKET}", f"raw/orders/{DAY}/{NAME}")
    assert raw["inputFacets"]["dataQualityMetrics"]["rowCount"] == 20
    failed = [a for a in raw["facets"]["dataQualityAssertions"]["assertions"] if not a["success"]]
    assert [(a["column"], a["assertion"]) for a in failed] == [("quantity", "min")]
    outputs = {o["name"]: o for o in complete["outputs"]}
    parquet = [n for n in outputs if n.startswith("processed/orders/order_date=2026-11-25/")]
    assert len(parquet) == 1 and outputs[parquet[0]]["outputFacets"]["outputStatistics"]["rowCount"] == 19
    assert outputs["/v1/orders"]["outputFacets"]["outputStatistics"]["rowCount"] == 19
    assert outputs["/v1/orders"]["namespace"] == local_stack.stub_url
    assert any(n.endswith(".rejected.csv") and o["outputFacets"]["outputStatistics"]["rowCount"] == 1
               for n, o in outputs.items())
    facet = complete["run"]["facets"]["filegate"]
    assert (facet["rowsIn"], facet["rowsValid"], facet["rowsRejected"], facet["status"]) == (20, 19, 1, "processed")


def test_the_parent_is_the_task_run_the_provider_reported(lineage_run) -> None:
    parent = file_events(lineage_run)[-1]["run"]["facets"]["parent"]
    assert parent["job"]["name"] == "process_orders.deliver_records"
    provider_runs = {e["run"]["runId"] for e in lineage_run["events"]
                     if e["job"]["name"] == "process_orders.deliver_records"}
    assert parent["run"]["runId"] in provider_runs


def test_every_received_event_is_valid_openlineage(lineage_run) -> None:
    assert lineage_run["events"]
    invalid = {f"{e['job']['name']} {e.get('eventType')}": found for e in lineage_run["events"]
               if (found := problems(e))}
    assert invalid == {}


def test_the_processed_file_is_an_asset_event_with_its_extra(lineage_run) -> None:
    ours = [e for e in lineage_run["asset_events"] if json.loads(e["extra"] or "{}").get("file") == NAME]
    assert [(e["name"], e["uri"], e["source_task_id"]) for e in ours] == [
        ("filegate_orders_parquet", f"s3://{BUCKET}/processed/orders", "deliver_records")]
    extra = json.loads(ours[0]["extra"])
    assert (extra["rows"], extra["rows_in"], extra["rows_rejected"]) == (19, 20, 1)
    assert len(extra["sha256"]) == 64 and extra["file_id"] > 0
    assert [k.split("/")[2] for k in extra["keys"]] == ["order_date=2026-11-25"]


def test_the_asset_event_starts_the_downstream_dag(lineage_run) -> None:
    runs = lineage_run["downstream"]
    assert runs and {r["run_type"] for r in runs} == {"asset_triggered"}
    assert NAME in {json.loads(r["extra"])["file"] for r in runs}


def test_the_page_shows_the_files_lineage_and_what_the_receiver_got(lineage_run, local_stack, monkeypatch) -> None:
    for name in ("FILEGATE_DB_URL", "FILEGATE_API_URL", "FILEGATE_LINEAGE_URL"):
        monkeypatch.setenv(name, local_stack.env[name])
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "filegate-local")
    s3 = boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    store = StatusStore(local_stack.db_url)
    file_id = file_events(lineage_run)[-1]["run"]["facets"]["filegate"]["fileId"]
    view = file_lineage(store, s3, BUCKET, file_id)
    assert view["event_type"] == "COMPLETE" and view["rows"] == {"in": 20, "valid": 19, "rejected": 1}
    assert [d["name"] for d in view["inputs"]] == [f"raw/orders/{DAY}/{NAME}"]
    assert "/v1/orders" in {d["name"] for d in view["outputs"]}
    assert [e["eventType"] for e in view["received"]] == ["START", "COMPLETE"]
    assert problems(view["event"]) == []


def test_other_tests_stacks_leave_the_provider_disabled(local_stack) -> None:
    assert not any(name.startswith("AIRFLOW__OPENLINEAGE__") for name in local_stack.env)
