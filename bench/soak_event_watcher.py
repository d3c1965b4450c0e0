"""Soak test of the event-driven path: is the S3 → SQS → AssetWatcher chain still firing after an hour?

Older Airflow versions had SQS asset watchers stop after about 30 minutes (apache/airflow#51213). This script
starts its own stack (ports and FILEGATE_HOME from the environment), uploads one small valid `orders` file every
`--interval` seconds for `--minutes`, and records for each upload how long until the file is registered and
`processed`, and which DAG run registered it: a run of type `asset_triggered` proves the watcher fired for it
(a run started any other way would only have found the file through its sweep).

    FILEGATE_HOME=/tmp/x FILEGATE_MOTO_PORT=… .venv/bin/python bench/soak_event_watcher.py --minutes 62

It is not part of `make bench` (it takes an hour). The code under test is a snapshot copied at start, so edits to
the working tree during the hour cannot disturb it. The report goes to <FILEGATE_HOME>/soak_report.{json,txt}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}


def snapshot(home: Path) -> Path:
    """Copies the DAG file, the library and the orders contract so the soak runs code that cannot change."""
    snap = home / "snapshot"
    shutil.rmtree(snap, ignore_errors=True)
    (snap / "dags").mkdir(parents=True)
    (snap / "include" / "feeds").mkdir(parents=True)
    shutil.copy2(REPO / "dags" / "process_feeds.py", snap / "dags" / "process_feeds.py")
    shutil.copytree(REPO / "include" / "filegate", snap / "include" / "filegate",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "include" / "feeds" / "orders.yaml", snap / "include" / "feeds" / "orders.yaml")
    return snap


def orders_csv(n: int) -> bytes:
    """A valid orders file whose content differs per upload (same content would end `duplicate`)."""
    day = datetime.now(UTC).date().isoformat()
    return (
        "order_id,order_date,customer_email,sku,quantity,unit_price,currency\n"
        f"{100000 + n},{day},soak{n}@example.com,SOK-{n % 10000:04d},1,{n % 97}.50,EUR\n"
    ).encode()


def runs(stack: Any, token: str, dag_id: str) -> list[dict[str, Any]]:
    from filegate_stack.samples import _api

    return list(_api(stack, token, f"/api/v2/dags/{dag_id}/dagRuns?limit=500")["dag_runs"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=62)
    parser.add_argument("--interval", type=float, default=120)
    parser.add_argument("--file-timeout", type=float, default=110)
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up at the end")
    args = parser.parse_args()

    home = Path(os.environ["FILEGATE_HOME"]).resolve()
    home.mkdir(parents=True, exist_ok=True)
    snap = snapshot(home)
    # Children inherit os.environ: PYTHONPATH beats the editable install's finder, so they import the snapshot.
    os.environ["PYTHONPATH"] = str(snap / "include")
    os.environ["FILEGATE_DAGS_FOLDER"] = str(snap / "dags")
    os.environ["FILEGATE_FEEDS_DIR"] = str(snap / "include" / "feeds")
    os.environ["FILEGATE_FEEDS"] = "orders"
    sys.path.insert(0, str(snap / "include"))

    import boto3

    from filegate.status.store import StatusStore
    from filegate.storage import keys
    from filegate_stack.airflow import login_token
    from filegate_stack.samples import wait_for_dags
    from filegate_stack.stack import Stack

    stack = Stack()
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "uploads": []}
    try:
        stack.start()
        env = stack.env()
        token = login_token(stack.ctx)
        wait_for_dags(stack, token, {"process_orders"})
        triggerer_started = time.time()
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        store = StatusStore.connect(env["FILEGATE_DB_URL"])
        end = time.monotonic() + args.minutes * 60
        n = 0
        while time.monotonic() < end:
            n += 1
            tick = time.monotonic()
            key = keys.raw_key("orders", datetime.now(UTC).date(), f"soak-{n:03d}.csv")
            put_at = time.time()
            s3.put_object(Bucket=env["FILEGATE_BUCKET"], Key=key, Body=orders_csv(n))
            row = None
            while time.monotonic() - tick < args.file_timeout:
                row = store.reads.find_by_raw_keys([key]).get(key)
                if row and row["status"] in TERMINAL:
                    break
                time.sleep(0.25)
            history = store.reads.history(row["id"]) if row else []
            entry = {
                "n": n, "key": key, "minute": round((put_at - triggerer_started) / 60, 1),
                "status": row["status"] if row else "not registered",
                "registered_s": round(row["created_at"].timestamp() - put_at, 2) if row else None,
                "processed_s": (round(row["finished_at"].timestamp() - put_at, 2)
                                if row and row["finished_at"] else None),
                "registered_by_run": history[0]["run_id"] if history else None,
            }
            entry["by_watcher"] = bool(entry["registered_by_run"]
                                       and entry["registered_by_run"].startswith("asset_triggered__"))
            report["uploads"].append(entry)
            print(json.dumps(entry), flush=True)
            time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
        dag_runs = runs(stack, login_token(stack.ctx), "process_orders")
        report["dag_runs"] = {
            "total": len(dag_runs),
            "asset_triggered": sum(r["run_type"] == "asset_triggered" for r in dag_runs),
            "success": sum(r["state"] == "success" for r in dag_runs),
        }
        triggerer_log = stack.ctx.paths.log_file("airflow-triggerer").read_text(errors="replace")
        report["triggerer"] = {
            "error_lines": sum("[error" in line.lower() for line in triggerer_log.splitlines()),
            "trigger_starts": triggerer_log.count("starting"),
        }
    finally:
        report["finished"] = datetime.now(UTC).isoformat()
        uploads = report["uploads"]
        done = [u for u in uploads if u["status"] == "processed"]
        late = [u for u in uploads if u["minute"] >= 30]
        report["summary"] = {
            "uploads": len(uploads),
            "processed": len(done),
            "registered_by_watcher_run": sum(u["by_watcher"] for u in uploads),
            "after_30_min": {"uploads": len(late), "by_watcher": sum(u["by_watcher"] for u in late),
                             "processed": sum(u["status"] == "processed" for u in late)},
            "processed_s_median": statistics.median([u["processed_s"] for u in done]) if done else None,
            "processed_s_max": max((u["processed_s"] for u in done), default=None),
            "registered_s_median": (statistics.median([u["registered_s"] for u in uploads if u["registered_s"]])
                                    if any(u["registered_s"] for u in uploads) else None),
        }
        (home / "soak_report.json").write_text(json.dumps(report, indent=2, default=str))
        (home / "soak_report.txt").write_text(json.dumps(report["summary"], indent=2) + "\n")
        print(json.dumps(report["summary"], indent=2), flush=True)
        if not args.keep_running:
            leftovers = stack.stop()
            print(f"stack stopped; leftover pids: {leftovers}", flush=True)
    summary = report["summary"]
    return 0 if summary["uploads"] and summary["registered_by_watcher_run"] == summary["uploads"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
