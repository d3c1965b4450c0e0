"""The processing DAG routes heavy files through Lambda (LambdaHook → local endpoint → awslambdaric → handler)
to `processed/`, with the same S3 outputs and Postgres rows as the in-worker path for the same file.

Feeds come from a temporary FILEGATE_FEEDS_DIR: `lines_worker` (no heavy settings) and `lines_lambda` (the
same contract, heavy above 1 KB, split into ~20 KB parts), plus `pdfs` (always Lambda)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pyarrow.parquet as pq
import pytest
import yaml
from airflow_runs import migrated_airflow_env
from airflow_runs import run_dag as run_airflow_dag

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "lambdas"))
from lambda_support import big_csv

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "include" / "samples" / "pdfs" / "statement_2026-11-20.pdf"
DAY = "2026/11/22"
LINES = {
    "description": "Lines with every kind of row (test feed for the Lambda path)",
    "source": {"kind": "s3", "pattern": "*.csv"},
    "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
    "schema": {"columns": [{"name": "id", "type": "int", "nullable": False},
                           {"name": "amount", "type": "decimal", "scale": 2, "min": 0},
                           {"name": "note", "type": "string"}]},
    "thresholds": {"max_rejected_share": 0.6},
}


@pytest.fixture(scope="module")
def dag_env(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    feeds = tmp_path_factory.mktemp("feeds")
    (feeds / "lines_worker.yaml").write_text(yaml.safe_dump({"name": "lines_worker", **LINES}))
    (feeds / "lines_lambda.yaml").write_text(yaml.safe_dump(
        {"name": "lines_lambda", **LINES, "heavy": {"size_threshold_bytes": 1024}}))
    (feeds / "pdfs.yaml").write_text((ROOT / "include" / "feeds" / "pdfs.yaml").read_text())
    home = tmp_path_factory.mktemp("airflow")
    return migrated_airflow_env(local_stack.env, home, FILEGATE_FEEDS_DIR=str(feeds),
                                FILEGATE_HEAVY_PART_BYTES="20000")


def run_dag(env: dict[str, str], dag_id: str) -> dict:
    outcome = run_airflow_dag(env, dag_id)
    outcome["log"] = outcome["output"]
    return outcome


@pytest.fixture(scope="module")
def s3(local_stack: Any) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def runs(local_stack: Any, dag_env: dict[str, str], s3: Any) -> dict[str, dict]:
    data = big_csv(3000, seed=7)
    for feed in ("lines_worker", "lines_lambda"):
        s3.put_object(Bucket=local_stack.bucket, Key=f"raw/{feed}/{DAY}/lines.csv", Body=data)
    params = json.dumps({"page_map": {"summary": [0], "details": [1, 2]}})
    s3.put_object(Bucket=local_stack.bucket, Key=f"raw/pdfs/{DAY}/statement.pdf", Body=PDF.read_bytes(),
                  Metadata={"filegate-params": params})
    s3.put_object(Bucket=local_stack.bucket, Key=f"raw/pdfs/{DAY}/broken.pdf", Body=PDF.read_bytes()[:300])
    return {feed: run_dag(dag_env, f"process_{feed}") for feed in ("lines_worker", "lines_lambda", "pdfs")}


def _file(db_url: str, feed: str, name: str) -> dict:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute("SELECT * FROM file WHERE feed = %s AND name = %s", (feed, name)).fetchone()
        row["quality"] = conn.execute("SELECT rows_total, rows_valid, rows_rejected, inferred_schema, column_stats,"
                                      " issues FROM quality_result WHERE file_id = %s", (row["id"],)).fetchone()
    return row


def _approx(value: Any) -> Any:
    """Mean/stddev of split runs add partial sums in another order: compare to 9 significant digits."""
    if isinstance(value, dict):
        return {k: (float(f"{v:.9g}") if k in ("mean", "stddev") and isinstance(v, float) else _approx(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return value


def _objects(s3: Any, bucket: str, feed: str) -> dict[str, bytes]:
    found = {}
    for prefix in (f"processed/{feed}/", f"quarantine/{feed}/"):
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            found[obj["Key"].replace(feed, "FEED")] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


def test_runs_succeed_and_route(runs: dict) -> None:
    for feed, run in runs.items():
        assert run["state"] == "success", (feed, run["tasks"])
    log = runs["lines_lambda"]["log"]
    assert "invoking Lambda filegate-plan-parts" in log and "invoking Lambda filegate-merge-parts" in log
    assert "[filegate-convert-part] START RequestId" in log  # the function's log tail is in the task log
    assert "invoking Lambda" not in runs["lines_worker"]["log"]


def test_lambda_path_writes_the_worker_outputs(runs: dict, local_stack: Any, s3: Any) -> None:
    worker = _objects(s3, local_stack.bucket, "lines_worker")
    lam = _objects(s3, local_stack.bucket, "lines_lambda")
    assert sorted(lam) == sorted(worker) and any(k.endswith(".parquet") for k in worker)
    for key, body in worker.items():
        if key.endswith(".parquet"):
            assert pq.read_table(io.BytesIO(lam[key])).equals(pq.read_table(io.BytesIO(body))), key
        elif key.endswith(".json"):
            a, b = json.loads(lam[key].replace(b"lines_lambda", b"FEED")), json.loads(
                body.replace(b"lines_worker", b"FEED"))
            a.pop("seconds"), b.pop("seconds")
            assert _approx(a) == _approx(b), key
        else:
            assert lam[key] == body, key
    assert not s3.list_objects_v2(Bucket=local_stack.bucket, Prefix="staging/").get("Contents")


def test_lambda_path_writes_the_worker_rows(runs: dict, local_stack: Any) -> None:
    worker = _file(local_stack.db_url, "lines_worker", "lines.csv")
    lam = _file(local_stack.db_url, "lines_lambda", "lines.csv")
    assert worker["status"] == lam["status"] == "processed"
    assert _approx(lam["quality"]) == _approx(worker["quality"])
    assert lam["quality"]["rows_total"] == 3000 and lam["quality"]["rows_rejected"] > 0
    route = lam["outputs"].pop("lambda")
    assert route["invocations"] >= 4 and "filegate-convert-part" in route["functions"]
    normalized = json.loads(json.dumps(lam["outputs"]).replace("lines_lambda", "FEED"))
    assert normalized == json.loads(json.dumps(worker["outputs"]).replace("lines_worker", "FEED"))


def test_pdf_is_split_on_lambda_with_page_counts(runs: dict, local_stack: Any, s3: Any) -> None:
    row = _file(local_stack.db_url, "pdfs", "statement.pdf")
    assert row["status"] == "processed", row["error"]
    assert row["outputs"]["pages"] == {"summary": 1, "details": 2}
    assert row["quality"]["rows_total"] == 3 and row["quality"]["column_stats"]["parts"] == {"summary": 1,
                                                                                            "details": 2}
    parts = sorted(k for k in row["outputs"]["pdf"])
    assert [k.rsplit("/", 1)[1] for k in parts] == ["details.pdf", "summary.pdf"]
    assert all(s3.head_object(Bucket=local_stack.bucket, Key=k)["ContentType"] == "application/pdf" for k in parts)


def test_broken_pdf_is_quarantined_with_the_reason(runs: dict, local_stack: Any) -> None:
    row = _file(local_stack.db_url, "pdfs", "broken.pdf")
    assert row["status"] == "quarantined"
    assert "the PDF is damaged" in row["error"] or "no page map" in row["error"]
