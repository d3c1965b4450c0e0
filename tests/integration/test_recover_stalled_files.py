"""Files that no run is working on are not left behind: `recover_stalled_files` finds the feeds whose files sit
under an expired claim (the run holding them died) or stay queued with no live run, and starts their
`process_<feed>`; a file whose runs keep dying is failed with the reason instead of looping forever."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from airflow_runs import migrated_airflow_env, run_dag

from filegate.status import Actor, Status, StatusStore
from filegate.status.lease import MAX_EXPIRED_CLAIMS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


def queued_file(store: StatusStore, feed: str, name: str = "f.csv") -> int:
    actor = Actor(dag_id=f"process_{feed}", run_id="run-register", task_id="register_arrivals")
    reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/2026/12/03/{name}", name=name,
                         sha256=secrets.token_hex(32), size_bytes=10, actor=actor)
    store.queue([reg.file_id], actor)
    return int(reg.file_id)


def claimed_by_a_dying_run(store: StatusStore, feed: str, file_id: int, run: str) -> None:
    """A run claims the file for a short lease and dies: nothing renews the lease."""
    actor = Actor(dag_id=f"process_{feed}", run_id=run, task_id="process_files")
    assert [r["id"] for r in store.claim(actor, feed=feed, file_ids=[file_id], lease_s=0.3)] == [file_id]
    time.sleep(0.5)


def age(db_url: str, file_id: int, seconds: int) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE file SET updated_at = now() - make_interval(secs => %s) WHERE id = %s",
                     (seconds, file_id))


def test_stalled_feeds_are_those_with_expired_claims_or_old_queued_files_and_no_live_run(store, local_stack) -> None:
    dead, waiting, busy, fresh = (f"stall_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("dead", "wait", "busy", "new"))
    claimed_by_a_dying_run(store, dead, queued_file(store, dead), "run-dead")
    age(local_stack.db_url, queued_file(store, waiting), 3600)
    age(local_stack.db_url, queued_file(store, busy, "old.csv"), 3600)  # queued behind a live run: a backlog
    live = queued_file(store, busy, "live.csv")
    store.claim(Actor(dag_id=f"process_{busy}", run_id="run-live", task_id="process_files"), feed=busy,
                file_ids=[live], lease_s=600)
    queued_file(store, fresh)  # queued a moment ago: its run is on the way

    stalled = store.reads.stalled_feeds(waiting_for_s=900)

    assert stalled[dead] == {"expired": 1, "waiting": 0}
    assert stalled[waiting] == {"expired": 0, "waiting": 1}
    assert busy not in stalled and fresh not in stalled


def test_a_file_whose_runs_keep_dying_is_failed_with_the_reason(store) -> None:
    feed = f"stall_poison_{uuid.uuid4().hex[:6]}"
    file_id = queued_file(store, feed)
    nxt = Actor(dag_id=f"process_{feed}", run_id="run-next", task_id="process_files")
    for n in range(1, MAX_EXPIRED_CLAIMS):
        claimed_by_a_dying_run(store, feed, file_id, f"run-dies-{n}")
        assert store.release_expired(nxt, feed=feed) == [file_id]
        assert store.reads.get_file(file_id)["status"] == Status.QUEUED
    claimed_by_a_dying_run(store, feed, file_id, "run-dies-last")

    assert store.release_expired(nxt, feed=feed) == []
    row = store.reads.get_file(file_id)
    assert row["status"] == Status.FAILED and row["finished_at"] is not None
    assert "claim of run run-dies-last" in row["error"]
    assert f"died {MAX_EXPIRED_CLAIMS} times, so it is not queued again" in row["error"]
    assert "reprocess_files" in row["error"]
    assert store.claim(nxt, feed=feed) == []


@pytest.fixture(scope="module")
def recovery(local_stack, store, tmp_path_factory) -> dict:
    feed = f"recover{uuid.uuid4().hex[:6]}"
    feeds = tmp_path_factory.mktemp("recover_feeds")
    contract = yaml.safe_load((ROOT / "include" / "feeds" / "uploads.yaml").read_text())
    contract.update(name=feed)
    (feeds / f"{feed}.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    file_id = queued_file(store, feed)
    claimed_by_a_dying_run(store, feed, file_id, "run-killed")
    orphan = f"stall_nocontract_{uuid.uuid4().hex[:6]}"  # a feed whose contract is gone is left alone
    claimed_by_a_dying_run(store, orphan, queued_file(store, orphan), "run-gone")

    home = tmp_path_factory.mktemp("airflow-recover")
    env = migrated_airflow_env(local_stack.env, home, FILEGATE_FEEDS_DIR=str(feeds))
    # The triggered DAG must be known to the metadata database, as the dag-processor would leave it.
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True,
                   capture_output=True, timeout=600)
    outcome = run_dag(env, "recover_stalled_files")
    with sqlite3.connect(home / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        outcome["triggered"] = [dict(r) for r in db.execute("SELECT dag_id, run_type FROM dag_run"
                                                            " WHERE dag_id != 'recover_stalled_files'")]
    return {**outcome, "feed": feed, "orphan": orphan}


def test_the_dag_starts_process_runs_for_feeds_with_stalled_files_only(recovery) -> None:
    assert recovery["state"] == "success", recovery["output"][-3000:]
    assert recovery["triggered"] == [{"dag_id": f"process_{recovery['feed']}", "run_type": "operator_triggered"}]
    assert f"feed {recovery['orphan']}" in recovery["output"] and "left alone" in recovery["output"]
