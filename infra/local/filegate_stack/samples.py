"""`make run`'s second half: drop the sample files into the running stack, wait for every file to reach a
terminal status, print what happened and how to look at it. Exit 0 only if every file ended as expected."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from filegate_stack.airflow import airflow_url, login_token
from filegate_stack.stack import Stack

SAMPLES = Path(__file__).resolve().parents[3] / "include" / "samples"
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}
DAG_READY_TIMEOUT_S = 180
FILE_TIMEOUT_S = 300


def _api(stack: Stack, token: str, path: str) -> Any:
    request = urllib.request.Request(f"{airflow_url(stack.ctx)}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for_dags(stack: Stack, token: str, dag_ids: set[str]) -> None:
    deadline = time.monotonic() + DAG_READY_TIMEOUT_S
    while True:
        found = {d["dag_id"]: d for d in _api(stack, token, "/api/v2/dags?limit=500")["dags"]}
        ready = {d for d in dag_ids if d in found and not found[d]["is_paused"]}
        errors = _api(stack, token, "/api/v2/importErrors")["import_errors"]
        if errors:
            sys.exit("DAG import errors:\n" + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors))
        if ready == dag_ids:
            return
        if time.monotonic() > deadline:
            sys.exit(f"DAGs not ready after {DAG_READY_TIMEOUT_S} s: missing or paused {sorted(dag_ids - ready)}")
        time.sleep(2)


def main() -> int:
    import boto3

    from filegate.status.store import StatusStore
    from filegate.storage import keys

    stack = Stack()
    env = stack.env()
    plan = yaml.safe_load((SAMPLES / "expected.yaml").read_text())["phases"]
    token = login_token(stack.ctx)
    wait_for_dags(stack, token, {f"process_{f['feed']}" for phase in plan for f in phase})
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    store = StatusStore.connect(env["FILEGATE_DB_URL"])
    today = datetime.now(UTC).date()
    results: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    started = time.monotonic()
    for number, phase in enumerate(plan, start=1):
        phase_keys = {}
        for item in phase:
            key = keys.raw_key(item["feed"], today, Path(item["file"]).name)
            s3.upload_file(str(SAMPLES / item["file"]), env["FILEGATE_BUCKET"], key)
            phase_keys[key] = item
            print(f"phase {number}: dropped s3://{env['FILEGATE_BUCKET']}/{key}", flush=True)
        deadline = time.monotonic() + FILE_TIMEOUT_S
        while True:
            rows = store.find_by_raw_keys(list(phase_keys))
            if all(k in rows and rows[k]["status"] in TERMINAL for k in phase_keys):
                break
            if time.monotonic() > deadline:
                print(f"timed out after {FILE_TIMEOUT_S} s waiting for phase {number}", file=sys.stderr)
                break
            time.sleep(1)
        results += [(item, rows.get(key)) for key, item in phase_keys.items()]
    elapsed = time.monotonic() - started

    ok = True
    print(f"\nSample files ({elapsed:.0f} s from first drop to last terminal status):")
    for item, row in results:
        status = row["status"] if row else "not registered"
        good = status == item["expect"]
        ok &= good
        print(f"  {'ok ' if good else 'BAD'} {item['file']:<45} {status:<12} (expected {item['expect']})")
        if row and row["error"]:
            print(f"      reason: {row['error']}")
    with urllib.request.urlopen(f"{env['FILEGATE_API_URL']}/_stub/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    print(f"\nStub API received {stats['records_received']} records in {stats['requests']} requests since it "
          f"started ({stats['records_by_path']}); files delivered by an earlier `make run` are not posted again.")
    config = stack.ctx.config
    print(f"""
Airflow UI:   {airflow_url(stack.ctx)}   (log in as {config.airflow_user} / {config.airflow_password})
File status:  .venv/bin/filegate status
Stack:        .venv/bin/filegate-stack status   ·   stop everything with: make stop
""")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
