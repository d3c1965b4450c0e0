"""A file run's OpenLineage events (spec-valid, with schema, row counts, assertions, parent run), sent through
the OpenLineage provider's real HTTP transport to the stack's receiver; and its Airflow asset events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from openlineage.client.serde import Serde
from openlineage_schema import problems

from filegate.contracts import get_contract
from filegate.lineage.file_run import FileRun, Locations, postgres_location
from filegate.lineage.run_events import ParentRun, file_run_events
from filegate_stack.lineage_receiver import build_server

ROOT = Path(__file__).resolve().parents[2]
PARENT = ParentRun(run_id="01937e4e-0000-7000-8000-000000000001", job_namespace="filegate-local",
                   job_name="process_orders.deliver_records", root_run_id="01937e4e-0000-7000-8000-000000000002",
                   root_job_name="process_orders")
LOCATIONS = Locations(bucket="fg-bucket", postgres="postgres://db.internal:5432/filegate",
                      api_base="http://127.0.0.1:8150")


def orders_run(status: str = "processed") -> FileRun:
    return FileRun(
        file={"id": 42, "feed": "orders", "name": "orders_2026-11-25.csv", "status": status,
              "sha256": "ab" * 32, "raw_key": "raw/orders/2026/11/25/orders_2026-11-25.csv", "size_bytes": 1234,
              "error": None if status == "processed" else "too many rejected rows (12%)",
              "claimed_at": datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
              "finished_at": datetime(2026, 11, 25, 10, 0, 5, tzinfo=UTC),
              "outputs": {"raw": "raw/orders/2026/11/25/orders_2026-11-25.csv",
                          "parquet": ["processed/orders/order_date=2026-11-25/orders_2026-11-25-abab.parquet"],
                          "quarantine_rows": "quarantine/orders/2026/11/25/orders_2026-11-25-abab.rejected.csv",
                          "summary": "processed/orders/_summary/orders_2026-11-25-abab.json"}},
        quality={"rows_total": 20, "rows_valid": 19, "rows_rejected": 1, "inferred_schema": {},
                 "column_stats": {"order_id": {"nulls": 0, "distinct": 20}},
                 "issues": [{"column": "quantity", "rule": "min", "count": 1, "percent": 5.0}]},
        summary={"file_schema": [{"name": "order_id", "type": "int"}, {"name": "quantity", "type": "int"}],
                 "schema": {"order_id": "int64", "quantity": "int64", "email": "string"}},
        api_records=19)


def as_json(events) -> list[dict]:
    return [json.loads(Serde.to_json(e)) for e in events]


def test_a_processed_file_is_a_start_and_complete_with_its_datasets_and_facets() -> None:
    start, complete = as_json(file_run_events(orders_run(), get_contract("orders"), LOCATIONS,
                                              namespace="filegate-local", parent=PARENT))
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert (complete["job"]["namespace"], complete["job"]["name"]) == ("filegate-local", "filegate.orders")
    raw = complete["inputs"][0]
    assert (raw["namespace"], raw["name"]) == ("s3://fg-bucket", "raw/orders/2026/11/25/orders_2026-11-25.csv")
    assert [f["name"] for f in raw["facets"]["schema"]["fields"]] == ["order_id", "quantity"]
    assert raw["inputFacets"]["dataQualityMetrics"]["rowCount"] == 20
    assertions = raw["facets"]["dataQualityAssertions"]["assertions"]
    checks = {(a.get("column"), a["assertion"]): a["success"] for a in assertions}
    assert checks[("quantity", "min")] is False and checks[("order_id", "unique")] is True
    limit = get_contract("orders").thresholds.max_rejected_share  # 1 of 20 rows rejected: within it
    assert checks[(None, f"rejected_share<={limit:g}")] is (limit >= 0.05)
    outputs = {o["name"]: o for o in complete["outputs"]}
    parquet = outputs["processed/orders/order_date=2026-11-25/orders_2026-11-25-abab.parquet"]
    assert parquet["outputFacets"]["outputStatistics"]["rowCount"] == 19
    assert [f["name"] for f in parquet["facets"]["schema"]["fields"]] == ["order_id", "quantity", "email"]
    assert outputs["/v1/orders"]["namespace"] == "http://127.0.0.1:8150"
    assert outputs["/v1/orders"]["outputFacets"]["outputStatistics"]["rowCount"] == 19
    rejected = outputs["quarantine/orders/2026/11/25/orders_2026-11-25-abab.rejected.csv"]
    assert rejected["outputFacets"]["outputStatistics"]["rowCount"] == 1
    facet = complete["run"]["facets"]["filegate"]
    assert (facet["fileId"], facet["rowsIn"], facet["rowsValid"], facet["rowsRejected"]) == (42, 20, 19, 1)
    parent = complete["run"]["facets"]["parent"]
    assert (parent["job"]["namespace"], parent["job"]["name"]) == ("filegate-local", "process_orders.deliver_records")
    assert parent["root"]["job"]["name"] == "process_orders"
    assert problems(start) == [] and problems(complete) == []


def test_a_quarantined_file_fails_with_its_reason() -> None:
    _, end = as_json(file_run_events(orders_run("quarantined"), get_contract("orders"), LOCATIONS,
                                     namespace="default"))
    assert end["eventType"] == "FAIL"
    assert end["run"]["facets"]["errorMessage"]["message"] == "too many rejected rows (12%)"
    assert "parent" not in end["run"]["facets"]
    assert problems(end) == []


def test_a_postgres_destination_is_an_output_named_as_airflow_names_it() -> None:
    run = orders_run()
    run.file["outputs"]["postgres"] = {"table": "feeds.marketplace_daily_sales", "rows": 7}
    _, end = as_json(file_run_events(run, get_contract("marketplace"), LOCATIONS, namespace="default"))
    table = next(o for o in end["outputs"] if o["namespace"].startswith("postgres://"))
    assert (table["namespace"], table["name"]) == ("postgres://db.internal:5432",
                                                   "filegate.feeds.marketplace_daily_sales")
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 7
    assert problems(end) == []


def test_the_validator_refuses_a_broken_event() -> None:
    _, end = as_json(file_run_events(orders_run(), get_contract("orders"), LOCATIONS, namespace="default"))
    end["run"]["runId"] = "not-a-uuid"
    del end["inputs"][0]["facets"]["dataQualityAssertions"]["assertions"][0]["success"]
    found = problems(end)
    assert any("runId" in p for p in found) and any("success" in p for p in found)


def test_postgres_location_hides_credentials_and_names_sockets_localhost() -> None:
    assert postgres_location("postgresql://u:secret@db.example.com:6543/sales") == "postgres://db.example.com:6543/sales"
    assert postgres_location("postgresql://postgres@/filegate?host=/tmp/pg") == "postgres://localhost:5432/filegate"


@pytest.fixture()
def receiver(tmp_path):
    server, store = build_server(0, tmp_path / "lineage")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", store
    server.shutdown()
    server.server_close()


def test_events_go_through_the_providers_http_transport_to_the_receiver(receiver, tmp_path) -> None:
    """The provider's adapter, configured by AIRFLOW__OPENLINEAGE__TRANSPORT alone, as the stack configures it."""
    url, _ = receiver
    script = (
        "from filegate.contracts import get_contract\n"
        "from filegate.orchestration.lineage import _adapter, enabled\n"
        "from filegate.lineage.run_events import file_run_events\n"
        "import test_lineage as t\n"
        "assert enabled()\n"
        "for e in file_run_events(t.orders_run(), get_contract('orders'), t.LOCATIONS, namespace='filegate-local',"
        " parent=t.PARENT):\n"
        "    _adapter().emit(e)\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(
               [str(Path(__file__).parent), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "http", "url": url,
                                                          "endpoint": "api/v1/lineage", "timeout": 5})}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    events = requests.get(f"{url}/api/v1/lineage", params={"file_id": 42}, timeout=5).json()["events"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert all(problems(e) == [] for e in events)


def test_without_a_transport_the_provider_stays_disabled(tmp_path) -> None:
    """Other tests' runs send nothing unless the environment names a transport."""
    env = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    env["AIRFLOW_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", "from filegate.orchestration.lineage import enabled; "
                                                 "print(enabled())"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]


def test_a_hanging_lineage_backend_costs_one_budget_per_task_not_a_timeout_per_file(tmp_path) -> None:
    """A backend that accepts and never answers (timeouts and retries of the HTTP transport): the task waits
    FILEGATE_LINEAGE_BUDGET_S once, then goes on; nothing raises."""
    import socket

    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        script = (
            "import time\n"
            "from unittest import mock\n"
            "from filegate.contracts import get_contract\n"
            "import filegate.orchestration.lineage as lineage\n"
            "import test_lineage as t\n"
            "with mock.patch.object(lineage, 'locations', return_value=t.LOCATIONS), "
            "mock.patch.object(lineage, 'parent_of', return_value=t.PARENT):\n"
            "    started = time.monotonic()\n"
            "    sent = lineage.emit_file_lineage({}, get_contract('orders'), [t.orders_run() for _ in range(20)])\n"
            "print(sent, round(time.monotonic() - started, 1))\n"
        )
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "FILEGATE_LINEAGE_BUDGET_S": "2",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT / "tests"),
                                              os.environ.get("PYTHONPATH", "")]),
               "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "http", "url": url,
                                                              "endpoint": "api/v1/lineage", "timeout": 5})}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    sent, seconds = done.stdout.split()[-2:]
    assert int(sent) == 0 and float(seconds) < 4, done.stdout
