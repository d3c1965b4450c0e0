"""The ingestion DAGs on the real local stack: `ingest_ftp_<feed>` over FTPS into moto S3 with real bucket
notifications to SQS, `ingest_sftp_<feed>` over SFTP with the stack's connection (pinned host key), the SQS
watcher trigger consuming those notifications, `process_<feed>` picking the file up, and `sense_<feed>` run for
three logical dates (a backfill) with dag.test()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = ("process_feeds.py", "ingest_ftp.py", "ingest_sftp.py", "sense_feeds.py")
OLD = (time.time() - 3600, time.time() - 3600)

TRAINS = """
name: trains
description: Train movements from the operator's FTPS server (test contract).
source:
  kind: ftp
  pattern: "*.csv"
  ftp: {directory: /partner/trains, tls: true, stable_seconds: 1, after_download: archive, schedule: "*/5 * * * *"}
format: {type: csv}
schema:
  columns:
    - {name: train_id, type: string, nullable: false}
    - {name: delay_min, type: int, nullable: false}
"""
SETTLEMENTS = """
name: settlements
description: Card settlements from the processor's SFTP server (test contract).
source:
  kind: sftp
  pattern: "*.csv"
  sftp: {directory: /partner/settlements, stable_seconds: 1, after_download: archive}
format: {type: csv}
schema:
  columns:
    - {name: settlement_id, type: string, nullable: false}
"""
EVENTS = """
name: events
description: Events written straight to S3 by a producer (test contract).
source: {kind: s3, pattern: "*.csv", sensed_schedule: "@daily"}
format: {type: csv}
schema:
  columns:
    - {name: event_id, type: int, nullable: false}
"""

RUNNER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    results = []
    for spec in json.loads(sys.argv[2]):
        kwargs = {"run_conf": spec.get("conf")}
        if spec.get("logical_date"):
            kwargs["logical_date"] = datetime.fromisoformat(spec["logical_date"])
        run = bag.dags[spec["dag_id"]].test(**kwargs)
        results.append({"dag_id": spec["dag_id"], "run_id": run.run_id, "state": str(run.state),
                        "interval": [str(run.data_interval_start), str(run.data_interval_end)],
                        "tasks": {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}})
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def airflow_env(local_stack, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("ingest_airflow")
    feeds = home / "feeds"
    feeds.mkdir()
    (feeds / "trains.yaml").write_text(TRAINS)
    (feeds / "events.yaml").write_text(EVENTS)
    (feeds / "settlements.yaml").write_text(SETTLEMENTS)
    dags = home / "dags"
    dags.mkdir()
    for name in DAG_FILES:
        (dags / name).symlink_to(ROOT / "dags" / name)
    (home / "runner.py").write_text(RUNNER)
    env = {**os.environ, **local_stack.env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "FILEGATE_FEEDS_DIR": str(feeds),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    return env


def run_dags(env: dict[str, str], *runs: dict[str, Any]) -> list[dict[str, Any]]:
    home = Path(env["AIRFLOW_HOME"])
    result = subprocess.run([sys.executable, str(home / "runner.py"), str(home / "dags"), json.dumps(list(runs))],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def s3(local_stack) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def files(db_url: str, feed: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM file WHERE feed = %s ORDER BY id", (feed,)).fetchall()


def events_of(db_url: str, file_id: int) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM file_event WHERE file_id = %s ORDER BY id", (file_id,)).fetchall()


def receive_with_watcher_trigger(env: dict[str, str], queue_url: str) -> dict[str, Any]:
    """Runs the very trigger the AssetWatcher runs (common-messaging MessageQueueTrigger → SqsSensorTrigger)
    until it fires, and returns its event payload: what Airflow stores as the asset event's extra."""
    script = textwrap.dedent(f"""
        import asyncio, json
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

        async def first_event():
            trigger = MessageQueueTrigger(scheme="sqs", sqs_queue={queue_url!r}, aws_conn_id="aws_default",
                                          waiter_delay=1, wait_time_seconds=2, max_messages=10)
            async for event in trigger.run():
                return event.payload

        print(json.dumps(asyncio.run(asyncio.wait_for(first_event(), 60)), default=str))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def ftp_pickup(local_stack, airflow_env, s3) -> dict[str, Any]:
    folder = local_stack.ftp_root / "partner" / "trains"
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in {"t1.csv": b"train_id,delay_min\nICE1,3\n", "t2.csv": b"train_id,delay_min\nRE7,0\n",
                       "t2_again.csv": b"train_id,delay_min\nRE7,0\n"}.items():
        (folder / name).write_bytes(body)
        os.utime(folder / name, OLD)
    (runs,) = run_dags(airflow_env, {"dag_id": "ingest_ftp_trains"})
    payload = receive_with_watcher_trigger(airflow_env, local_stack.queues["trains"])
    processed = run_dags(airflow_env, {"dag_id": "process_trains"})
    return {"ingest": runs, "payload": payload, "process": processed[0]}


def test_ingest_ftp_dag_copies_registers_and_archives(ftp_pickup, local_stack, s3) -> None:
    run = ftp_pickup["ingest"]
    assert run["state"] == "success", run
    assert set(run["tasks"]) == {"list_ready_files[-1]", "copy_files[0]"}  # one batch: one copy task instance
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.bucket,
                                                         Prefix="raw/trains/")["Contents"])
    assert [k.rsplit("/", 1)[1] for k in listed] == ["t1.csv", "t2.csv", "t2_again.csv"]
    folder = local_stack.ftp_root / "partner" / "trains"
    assert sorted(p.name for p in (folder / "archive").iterdir()) == ["t1.csv", "t2.csv", "t2_again.csv"]
    rows = {r["name"]: r for r in files(local_stack.db_url, "trains")}
    assert rows["t2_again.csv"]["status"] == "duplicate"
    assert rows["t1.csv"]["source_path"] == "/partner/trains/t1.csv"
    assert events_of(local_stack.db_url, rows["t1.csv"]["id"])[1]["dag_id"] == "ingest_ftp_trains"


def test_ingest_sftp_dag_copies_over_the_stack_connection(local_stack, airflow_env, s3) -> None:
    """AIRFLOW_CONN_FILEGATE_SFTP as the stack defines it (SSH provider form, host key pinned) → raw/ → archive."""
    folder = local_stack.stack.ctx.paths.sftp_root / "partner" / "settlements"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s1.csv").write_bytes(b"settlement_id\nST-1\n")
    os.utime(folder / "s1.csv", OLD)
    (run,) = run_dags(airflow_env, {"dag_id": "ingest_sftp_settlements"})
    assert run["state"] == "success", run
    listed = s3.list_objects_v2(Bucket=local_stack.bucket, Prefix="raw/settlements/")["Contents"]
    assert [o["Key"].rsplit("/", 1)[1] for o in listed] == ["s1.csv"]
    assert sorted(p.name for p in folder.iterdir()) == ["archive"]
    (row,) = files(local_stack.db_url, "settlements")
    assert (row["source"], row["source_path"], row["status"]) == ("sftp", "/partner/settlements/s1.csv", "downloaded")
    assert events_of(local_stack.db_url, row["id"])[1]["dag_id"] == "ingest_sftp_settlements"


def test_bucket_notification_reaches_the_watcher_trigger(ftp_pickup) -> None:
    """S3 ObjectCreated → SQS (moto's real bucket notification) → the watcher's trigger fires with the keys."""
    from filegate.ingestion.arrivals import keys_from_s3_events

    payload = ftp_pickup["payload"]
    assert payload["status"] == "success"
    keys = keys_from_s3_events(payload["message_batch"])
    assert keys and all(k.startswith("raw/trains/") for k in keys)
    assert {k.rsplit("/", 1)[1] for k in keys} <= {"t1.csv", "t2.csv", "t2_again.csv"}


def test_process_dag_takes_the_ftp_files_on(ftp_pickup, local_stack) -> None:
    assert ftp_pickup["process"]["state"] == "success"
    rows = {r["name"]: r for r in files(local_stack.db_url, "trains")}
    assert {n: r["status"] for n, r in rows.items()} == {"t1.csv": "processed", "t2.csv": "processed",
                                                         "t2_again.csv": "duplicate"}
    history = [e["to_status"] for e in events_of(local_stack.db_url, rows["t1.csv"]["id"])]
    assert history == ["pending", "downloaded", "queued", "processing", "processed"]


DATES = ["2026-11-01", "2026-11-02", "2026-11-03"]


def owning(day: str) -> dict[str, str]:
    """A dag.test() run whose data interval is [day, day + 1). dag.test(logical_date=X), like a manual trigger,
    gets the last complete interval before X (Airflow's infer_manual_data_interval), so X is the next day; a
    scheduled or backfill run for `day` gets [day, day + 1) directly."""
    y, m, d = (int(p) for p in day.split("-"))
    return {"dag_id": "sense_events", "logical_date": f"{y}-{m:02d}-{d + 1:02d}T00:00:00+00:00"}


@pytest.fixture(scope="module")
def backfill(local_stack, airflow_env, s3) -> dict[str, Any]:
    for n, day in enumerate([*DATES, "2026-11-04"]):
        y, m, d = day.split("-")
        for k in range(2):
            s3.put_object(Bucket=local_stack.bucket, Key=f"raw/events/{y}/{m}/{d}/e{k}.csv",
                          Body=f"event_id\n{n * 10 + k}\n".encode())
    first = run_dags(airflow_env, *(owning(d) for d in DATES))
    snapshot = {r["raw_key"]: (r["status"], len(events_of(local_stack.db_url, r["id"])))
                for r in files(local_stack.db_url, "events")}
    again = run_dags(airflow_env, owning("2026-11-02"), {**owning("2026-11-03"), "conf": {"reprocess": True}})
    return {"first": first, "snapshot": snapshot, "again": again}


def test_backfill_over_three_dates_processes_exactly_those_dates(backfill, local_stack) -> None:
    assert [r["state"] for r in backfill["first"]] == ["success"] * 3
    assert [r["interval"][0][:10] for r in backfill["first"]] == DATES
    assert all(set(r["tasks"]) == {"register_interval[-1]", "process_files[-1]", "deliver_records[-1]"}
               for r in backfill["first"])
    status = {k: s for k, (s, _) in backfill["snapshot"].items()}
    assert status == {f"raw/events/{d.replace('-', '/')}/e{k}.csv": "processed" for d in DATES for k in range(2)}
    # Each file was processed by the run that owns its date.
    for run, day in zip(backfill["first"], DATES, strict=True):
        for row in files(local_stack.db_url, "events"):
            if row["raw_key"].startswith(f"raw/events/{day.replace('-', '/')}/"):
                runs = {e["run_id"] for e in events_of(local_stack.db_url, row["id"])}
                assert run["run_id"] in runs


def test_rerunning_a_date_is_idempotent_and_reprocess_is_explicit(backfill, local_stack) -> None:
    assert [r["state"] for r in backfill["again"]] == ["success", "success"]
    now = {r["raw_key"]: (r["status"], len(events_of(local_stack.db_url, r["id"])))
           for r in files(local_stack.db_url, "events")}
    for key, (status, n_events) in backfill["snapshot"].items():
        if "/11/03/" in key:  # reprocess: true → processed again from the raw copy, one row, longer history
            assert now[key] == ("processed", n_events + 3)
        else:  # a plain re-run of 11/02 (and 11/01, untouched) changes nothing
            assert now[key] == (status, n_events)
    assert not any("/11/04/" in k for k in now)  # never owned by these runs
