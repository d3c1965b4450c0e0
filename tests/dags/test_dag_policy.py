"""Team policy on every DAG in the folder: it imports cleanly, is documented, owned, tagged, retried, alerted."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from filegate.contracts import load_contracts
from filegate.contracts.model import MAX_RETRY_FOR_MINUTES
from filegate.orchestration.notify import on_dag_failure, on_task_failure
from filegate.orchestration.policy import Tag, retries_to_outlast

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_process_dag_per_feed_contract(dagbag) -> None:
    expected = {f"process_{c.name}" for c in load_contracts()}
    assert expected <= set(dagbag.dag_ids)


def test_every_dag_file_yields_a_dag(dagbag) -> None:
    """Airflow skips, without an error, a file whose text lacks the words "airflow" and "dag" (safe mode)."""
    files_with_dags = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert {p.name for p in DAGS.glob("*.py")} - files_with_dags == set()


def test_the_example_downstream_dag_runs_on_the_orders_parquet_asset(dagbag) -> None:
    dag = dagbag.dags["refresh_orders_mart"]
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["filegate_orders_parquet"]


def dags(dagbag):
    return sorted(dagbag.dags.values(), key=lambda d: d.dag_id)


def test_every_dag_follows_policy(dagbag) -> None:
    problems = []
    for dag in dags(dagbag):
        if Tag.FILEGATE not in dag.tags:
            problems.append(f"{dag.dag_id}: tag {Tag.FILEGATE} missing")
        if not dag.default_args.get("owner") or dag.default_args["owner"] == "airflow":
            problems.append(f"{dag.dag_id}: no owner")
        if (dag.default_args.get("retries") or 0) < 2:
            problems.append(f"{dag.dag_id}: retries < 2")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag.dag_id}: no doc_md")
        if dag.on_failure_callback is None:
            problems.append(f"{dag.dag_id}: no DAG failure callback")
        if dag.default_args.get("on_failure_callback") is not on_task_failure:
            problems.append(f"{dag.dag_id}: tasks lack the failure callback")
        if not isinstance(dag.catchup, bool):
            problems.append(f"{dag.dag_id}: catchup not explicit")
        for task in dag.tasks:
            if not (task.doc_md or "").strip():
                problems.append(f"{dag.dag_id}.{task.task_id}: no doc_md")
    assert problems == []
    assert all(d.on_failure_callback in (on_dag_failure, [on_dag_failure]) for d in dags(dagbag))


def test_every_deliver_task_outlasts_its_apis_outage_deadline(dagbag) -> None:
    """A deliver task's tries are its wait for an API that is down: whichever DAG delivers a feed's files
    (process_, sense_, reprocess_files), its retries must outlast the destination's retry_for_minutes."""
    contracts = {c.name: c for c in load_contracts()}
    problems = []
    for dag in dags(dagbag):
        feed = dag.dag_id.split("_", 1)[1] if dag.dag_id.startswith(("process_", "sense_")) else None
        api = contracts[feed].destinations.api if feed in contracts else None
        for task in dag.tasks:
            if task.task_id != "deliver_records" or (feed is not None and api is None):
                continue
            deadline_s = (api.retry_for_minutes if api else MAX_RETRY_FOR_MINUTES) * 60
            wanted = retries_to_outlast(deadline_s, task.retry_delay.total_seconds(),
                                        task.max_retry_delay.total_seconds() if task.max_retry_delay else 0)
            if not task.retry_exponential_backoff or task.retries < wanted:
                problems.append(f"{dag.dag_id}.{task.task_id}: {task.retries} retries, wanted {wanted}")
    assert problems == []


def test_process_dag_chain(dagbag) -> None:
    dag = dagbag.dags["process_orders"]
    assert [t.task_id for t in dag.topological_sort()] == ["register_arrivals", "process_files", "deliver_records"]
    watchers = [w for asset in dag.timetable.asset_condition.objects for w in asset.watchers]
    assert [w.name for w in watchers] == ["orders_arrivals"]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")), ids=str)
def test_no_network_at_parse_time(dag_file: str, tmp_path: Path) -> None:
    """Parsing a DAG file must not touch the network, a database or AWS: a blocked socket proves it."""
    script = tmp_path / "parse.py"
    script.write_text(
        "import socket, runpy, sys\n"
        "def refuse(*a, **k):\n    raise RuntimeError('network access at DAG parse time')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        f"runpy.run_path({str(DAGS / dag_file)!r}, run_name='dag_parse')\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_socket_guard_really_blocks(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        "import socket\n"
        "def refuse(*a, **k):\n    raise RuntimeError('blocked')\n"
        "socket.socket.connect = refuse\n"
        "s = socket.socket(); s.connect(('127.0.0.1', 9))\n"
    )
    assert subprocess.run([sys.executable, str(script)], capture_output=True).returncode != 0
    assert socket.socket.connect is not None
