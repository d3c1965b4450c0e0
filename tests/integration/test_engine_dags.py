"""The file engine inside the process DAGs (dag.test() on the real local stack): broken files of every kind end
`quarantined` with a readable reason and publish nothing; an aggregated feed lands in Postgres via Write-Audit-
Publish and a re-run changes nothing; formula cells stay inert in the quarantine CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import boto3
import psycopg
import pytest
from airflow_runs import migrated_airflow_env
from airflow_runs import run_dag as run_airflow_dag

from filegate import sample_files as generate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "samples"
DAY = "2026/11/21"
BROKEN = {
    "empty.csv": (b"", "the file is empty (0 bytes)"),
    "header_only.csv": (b"id,name\n", "the file has a header but no data rows"),
    "ragged_rows.csv": (generate.ragged(), "were rejected, above the feed's limit of 50%"),
    "unterminated_quote.csv": (generate.unterminated_quote(), "a quoted field opened on line 3 is never closed"),
    "nul_bytes.csv": (generate.nul_bytes(), "the file looks binary"),
    "mixed_encoding.csv": (generate.mixed_encoding(), "the file mixes encodings: line 5002"),
    "duplicate_headers.csv": (generate.duplicate_headers(), "duplicate column names in the header: id"),
    "wide_line.csv": (generate.wide_line(), "the header has 100,000 columns"),
    "binary_garbage.csv": (generate.binary_garbage(), "the file looks binary"),
    "zip_bomb.zip": (generate.zip_bomb(), "refused as a possible decompression bomb"),
}


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    return migrated_airflow_env(local_stack.env, tmp_path_factory.mktemp("airflow-engine"))


def run_dag(env: dict[str, str], dag_id: str) -> dict:
    return run_airflow_dag(env, dag_id)


@pytest.fixture(scope="module")
def s3(local_stack):
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def files(db_url: str, feed: str) -> dict[str, dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM file WHERE feed = %s", (feed,)).fetchall()
    return {r["name"]: r for r in rows}


@pytest.fixture(scope="module")
def uploads_run(local_stack, airflow_env, s3) -> dict:
    for name, (content, _) in BROKEN.items():
        s3.put_object(Bucket=local_stack.bucket, Key=f"raw/uploads/{DAY}/{name}", Body=content)
    good = SAMPLES / "uploads" / "customers_utf16_semicolon.csv"
    s3.upload_file(str(good), local_stack.bucket, f"raw/uploads/{DAY}/{good.name}")
    return run_dag(airflow_env, "process_uploads")


def test_broken_files_end_quarantined_with_reasons(uploads_run, local_stack, s3) -> None:
    assert uploads_run["state"] == "success"
    rows = files(local_stack.db_url, "uploads")
    for name, (_, reason) in BROKEN.items():
        assert rows[name]["status"] == "quarantined", (name, rows[name]["error"])
        assert reason in rows[name]["error"], (name, rows[name]["error"])
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.bucket, Prefix="processed/uploads/")
              .get("Contents", [])}
    assert not any(name.split(".")[0] in key for key in listed for name in BROKEN)  # nothing of them published
    reasons = {o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.bucket, Prefix="quarantine/uploads/")
               ["Contents"] if o["Key"].endswith(".reason.json")}
    assert len(reasons) == len(BROKEN)


def test_inferred_schema_reaches_the_quality_table(uploads_run, local_stack) -> None:
    row = files(local_stack.db_url, "uploads")["customers_utf16_semicolon.csv"]
    assert row["status"] == "processed", row["error"]
    with psycopg.connect(local_stack.db_url, row_factory=psycopg.rows.dict_row) as conn:
        quality = conn.execute("SELECT * FROM quality_result WHERE file_id = %s", (row["id"],)).fetchone()
    assert quality["inferred_schema"]["signed_up"] == {"type": "date", "nullable": False}
    assert quality["inferred_schema"]["score"] == {"type": "float", "nullable": True}
    assert quality["column_stats"]["id"]["max"] == 4


@pytest.fixture(scope="module")
def marketplace_run(local_stack, airflow_env, s3) -> dict:
    sample = SAMPLES / "marketplace" / "marketplace_2026-11-20.csv.gz"
    s3.upload_file(str(sample), local_stack.bucket, f"raw/marketplace/{DAY}/{sample.name}")
    return run_dag(airflow_env, "process_marketplace")


def test_marketplace_lands_in_postgres_once(marketplace_run, local_stack, airflow_env) -> None:
    assert marketplace_run["state"] == "success"
    row = files(local_stack.db_url, "marketplace")["marketplace_2026-11-20.csv.gz"]
    assert row["status"] == "processed", row["error"]
    assert row["outputs"]["postgres"]["table"] == "feeds.marketplace_daily_sales"
    query = "SELECT count(*), sum(transactions), sum(units) FROM feeds.marketplace_daily_sales"
    with psycopg.connect(local_stack.db_url) as conn:
        first = conn.execute(query).fetchone()
    assert first[0] == row["outputs"]["postgres"]["rows"] > 0
    # The same rows again (a reprocess): UPSERT on the natural key, never a second copy.
    from datetime import date

    from filegate.contracts import get_contract
    from filegate.loading.postgres import load_postgres
    from filegate.pipeline.engine import run_engine

    work = Path(airflow_env["AIRFLOW_HOME"]) / "reload"
    work.mkdir()
    result = run_engine(get_contract("marketplace"), SAMPLES / "marketplace" / "marketplace_2026-11-20.csv.gz",
                        arrived=date(2026, 11, 21), work_dir=work)
    load_postgres(local_stack.db_url, get_contract("marketplace"), result.parquet_files.values(), sha256="again",
                  expected_rows=result.rows_output)
    with psycopg.connect(local_stack.db_url) as conn:
        assert conn.execute(query).fetchone() == first


def test_failed_audit_publishes_nothing(local_stack, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from filegate.contracts.model import Contract
    from filegate.loading.postgres import LoadError, load_postgres

    contract = Contract.model_validate({
        "name": "wap_check", "description": "x",
        "schema": {"columns": [{"name": "k", "type": "int"}, {"name": "v", "type": "string"}]},
        "destinations": {"postgres": {"table": "wap_check", "natural_key": ["k"]}}})
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"k": [1, 2], "v": ["a", "b"]}), good)
    load_postgres(local_stack.db_url, contract, [good], sha256="s1", expected_rows=2)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"k": [3, 3, None], "v": ["c", "d", "e"]}), bad)
    with pytest.raises(LoadError, match="empty natural key"):
        load_postgres(local_stack.db_url, contract, [bad], sha256="s2", expected_rows=3)
    with psycopg.connect(local_stack.db_url) as conn:  # the target kept exactly the first load
        assert conn.execute("SELECT k, v FROM feeds.wap_check ORDER BY k").fetchall() == [(1, "a"), (2, "b")]


def test_xlsx_formula_cells_are_inert_in_quarantine(local_stack, airflow_env, s3) -> None:
    sample = SAMPLES / "price_lists" / "prices_2026-11.xlsx"
    s3.upload_file(str(sample), local_stack.bucket, f"raw/price_lists/{DAY}/{sample.name}")
    assert run_dag(airflow_env, "process_price_lists")["state"] == "success"
    row = files(local_stack.db_url, "price_lists")[sample.name]
    assert row["status"] == "processed", row["error"]
    body = s3.get_object(Bucket=local_stack.bucket, Key=row["outputs"]["quarantine_rows"])["Body"].read().decode()
    cells = [cell for record in csv.reader(io.StringIO(body)) for cell in record]
    assert "'=cmd|' /C calc'!A0" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
