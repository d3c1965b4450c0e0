"""process_orders end to end with dag.test() against the real local stack: S3 (moto), Postgres, stub API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import psycopg
import pyarrow.parquet as pq
import pytest
import requests
from airflow_runs import migrated_airflow_env
from airflow_runs import run_dag as run_airflow_dag

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "samples" / "orders"
DAY = "2026/11/21"


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    return migrated_airflow_env(local_stack.env, tmp_path_factory.mktemp("airflow"))


def run_dag(env: dict[str, str], dag_id: str = "process_orders") -> dict:
    return run_airflow_dag(env, dag_id)


@pytest.fixture(scope="module")
def s3(local_stack):
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def first_run(local_stack, airflow_env, s3) -> dict:
    requests.post(f"{local_stack.stub_url}/_stub/reset", timeout=5).raise_for_status()
    for name in ("orders_2026-11-20.csv", "orders_wrong_columns.csv"):
        s3.upload_file(str(SAMPLES / name), local_stack.bucket, f"raw/orders/{DAY}/{name}")
    outcome = run_dag(airflow_env)
    # The same bytes again under another name: a duplicate, never a second load.
    s3.upload_file(str(SAMPLES / "orders_2026-11-20_resent.csv"), local_stack.bucket,
                   f"raw/orders/{DAY}/orders_2026-11-20_resent.csv")
    outcome["second"] = run_dag(airflow_env)
    return outcome


def files(db_url: str) -> dict[str, dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM file WHERE feed = 'orders'").fetchall()
    return {r["name"]: r for r in rows}


def test_run_succeeds(first_run) -> None:
    assert first_run["state"] == "success"
    assert set(first_run["tasks"].values()) == {"success"}
    assert first_run["second"]["state"] == "success"


def test_terminal_statuses_with_reasons(first_run, local_stack) -> None:
    rows = files(local_stack.db_url)
    assert rows["orders_2026-11-20.csv"]["status"] == "processed"
    assert rows["orders_wrong_columns.csv"]["status"] == "quarantined"
    assert "missing column(s) order_id" in rows["orders_wrong_columns.csv"]["error"]
    dup = rows["orders_2026-11-20_resent.csv"]
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == rows["orders_2026-11-20.csv"]["id"]


def test_history_and_quality_are_recorded(first_run, local_stack) -> None:
    processed = files(local_stack.db_url)["orders_2026-11-20.csv"]
    with psycopg.connect(local_stack.db_url, row_factory=psycopg.rows.dict_row) as conn:
        events = conn.execute("SELECT * FROM file_event WHERE file_id = %s ORDER BY id", (processed["id"],)).fetchall()
        quality = conn.execute("SELECT * FROM quality_result WHERE file_id = %s", (processed["id"],)).fetchone()
        calls = conn.execute("SELECT * FROM api_call WHERE file_id = %s", (processed["id"],)).fetchall()
    assert [e["to_status"] for e in events] == ["pending", "downloaded", "queued", "processing", "processed"]
    assert {e["dag_id"] for e in events} == {"process_orders"}
    assert events[-1]["task_id"] == "deliver_records" and events[-1]["run_id"]
    assert (quality["rows_total"], quality["rows_valid"], quality["rows_rejected"]) == (15, 12, 3)
    assert {i["rule"] for i in quality["issues"]} == {"regex", "min", "type"}
    assert len(calls) == 1 and calls[0]["acknowledged"] and calls[0]["records"] == 12


def test_outputs_in_s3_and_raw_untouched(first_run, local_stack, s3) -> None:
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.bucket)["Contents"]}
    raw = {k for k in listed if k.startswith("raw/orders/")}
    assert raw == {f"raw/orders/{DAY}/orders_2026-11-20.csv", f"raw/orders/{DAY}/orders_wrong_columns.csv",
                   f"raw/orders/{DAY}/orders_2026-11-20_resent.csv"}
    original = s3.get_object(Bucket=local_stack.bucket, Key=f"raw/orders/{DAY}/orders_2026-11-20.csv")["Body"].read()
    assert original == (SAMPLES / "orders_2026-11-20.csv").read_bytes()
    parquet = sorted(k for k in listed if k.startswith("processed/orders/") and k.endswith(".parquet"))
    assert [k.split("/")[2] for k in parquet] == ["order_date=2026-11-20", "order_date=2026-11-21"]
    rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=local_stack.bucket, Key=k)["Body"].read())).num_rows
               for k in parquet)
    assert rows == 12
    summaries = [k for k in listed if k.startswith("processed/orders/_summaries/")]
    summary = json.loads(s3.get_object(Bucket=local_stack.bucket, Key=summaries[0])["Body"].read())
    assert summary["rows"] == {"total": 15, "valid": 12, "rejected": 3, "rejected_percent": 20.0}
    quarantine = {k for k in listed if k.startswith("quarantine/orders/")}
    assert any(k.endswith(".rejected.csv") for k in quarantine)
    reason = next(k for k in quarantine if k.endswith(".reason.json") and "wrong_columns" in k)
    assert "missing column(s)" in json.loads(s3.get_object(Bucket=local_stack.bucket, Key=reason)["Body"].read())[
        "reason"]


def test_stub_api_received_each_record_once(first_run, local_stack) -> None:
    stats = requests.get(f"{local_stack.stub_url}/_stub/stats", timeout=5).json()
    assert stats["records_by_path"] == {"/v1/orders": 12}
    posted = requests.get(f"{local_stack.stub_url}/_stub/requests", timeout=5).json()
    bodies = [r["body"] for r in posted if r["path"] == "/v1/orders"]
    ids = sorted(record["id"] for body in bodies for record in body)
    assert ids == [1001, 1002, 1004, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015]
    assert bodies[0][0] == {"id": 1001, "date": "2026-11-20", "email": "ana@example.com", "sku": "ABC-1234",
                            "quantity": 2, "total": "39.98", "currency": "EUR"}


def test_rerun_changes_nothing(first_run, local_stack, airflow_env) -> None:
    before = requests.get(f"{local_stack.stub_url}/_stub/stats", timeout=5).json()
    statuses = {n: r["status"] for n, r in files(local_stack.db_url).items()}
    assert run_dag(airflow_env)["state"] == "success"
    assert requests.get(f"{local_stack.stub_url}/_stub/stats", timeout=5).json() == before
    assert {n: r["status"] for n, r in files(local_stack.db_url).items()} == statuses
