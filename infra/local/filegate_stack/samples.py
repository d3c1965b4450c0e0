"""`make run`'s second half: drop the sample files into the running stack, wait for every file to reach a
terminal status, print what happened and how to look at it. Exit 0 only if every file ended as expected.

Most samples go straight to raw/ in S3; a sample marked `via: sftp` goes onto the stack's SFTP server instead, in
its feed's directory, and `ingest_sftp_<feed>` is triggered to pick it up (host key check, copy, archive) first.

The waits adapt to the machine: they print progress while files (or DAGs) still move and give up only when
nothing has moved for a long time, so a slow or busy laptop gets the same answer as a fast one, later."""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from filegate_stack.airflow import airflow_url, login_token
from filegate_stack.stack import Stack

SAMPLES = Path(__file__).resolve().parents[3] / "include" / "samples"
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}
# Give up only after this long without any change (a file's status, a DAG appearing): on a loaded machine the
# whole run may take many times longer than on an idle one, but something moves every few seconds.
STALL_TIMEOUT_S = 600
PROGRESS_EVERY_S = 15
IMPORT_TIMEOUT = "DagBag import timeout"  # Airflow's message when parsing a DAG file outlives dagbag_import_timeout


@dataclass
class Progress:
    """Watches a set of things reach their goal; `stalled` only when no observation changed for `stall_s`."""

    what: str
    stall_s: float = STALL_TIMEOUT_S
    clock: Callable[[], float] = time.monotonic
    last_seen: Mapping[str, str] = field(default_factory=dict)
    last_change: float = field(init=False)
    last_print: float = field(init=False)

    def __post_init__(self) -> None:
        self.last_change = self.last_print = self.clock()

    def observe(self, states: Mapping[str, str]) -> str | None:
        """Records the states; returns a progress line when they changed or every PROGRESS_EVERY_S."""
        now = self.clock()
        changed = dict(states) != dict(self.last_seen)
        if changed:
            self.last_seen, self.last_change = dict(states), now
        if changed or now - self.last_print >= PROGRESS_EVERY_S:
            self.last_print = now
            counts = Counter(states.values())
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            return f"  {self.what}: {summary}  ({now - self.last_change:.0f} s since the last change)"
        return None

    @property
    def stalled(self) -> bool:
        return self.clock() - self.last_change > self.stall_s


def _api(stack: Stack, token: str, path: str) -> Any:
    request = urllib.request.Request(f"{airflow_url(stack.ctx)}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for_dags(stack: Stack, token: str, dag_ids: set[str]) -> None:
    progress = Progress("DAGs")
    while True:
        try:
            found = {d["dag_id"]: d for d in _api(stack, token, "/api/v2/dags?limit=500")["dags"]}
            errors = _api(stack, token, "/api/v2/importErrors")["import_errors"]
        except OSError as exc:  # a loaded api-server can miss the 10 s read timeout; the stall rule still applies
            print(f"  DAGs: the Airflow API did not answer ({exc}); asking again", flush=True)
            if progress.stalled:
                sys.exit(f"the Airflow API has not answered for {STALL_TIMEOUT_S} s: {exc}")
            time.sleep(2)
            continue
        states = {d: ("paused" if found[d]["is_paused"] else "ready") if d in found else "not parsed yet"
                  for d in dag_ids}
        broken = [e for e in errors if IMPORT_TIMEOUT not in e["stack_trace"]]
        if broken:
            sys.exit("DAG import errors:\n" + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in broken))
        # A busy machine can push an import past Airflow's 30 s limit; the DAG processor parses it again.
        states.update({f"import of {e['filename']}": "timed out (retried)" for e in errors})
        if all(states.get(d) == "ready" for d in dag_ids):
            return
        if line := progress.observe(states):
            print(line, flush=True)
        if progress.stalled:
            missing = sorted(d for d in dag_ids if states.get(d) != "ready")
            sys.exit(f"DAGs not ready, and nothing changed for {STALL_TIMEOUT_S} s: missing or paused {missing}")
        time.sleep(2)


def _drift_as_expected(item: Mapping[str, Any], drift: Mapping[str, Any] | None) -> bool:
    """A file with `drift: [kinds]` in expected.yaml must have a drift record with exactly those kinds of change;
    the others are not checked (a feed's first files may differ from one another)."""
    if "drift" not in item:
        return True
    return drift is not None and sorted({c["kind"] for c in drift["changes"]}) == sorted(item["drift"])


def wait_for_deliveries(store: Any, wanted: list[dict[str, Any]]) -> bool:
    """Waits until each feed listed under `deliveries:` in expected.yaml has a slot of the last week in the
    expected state (the watch_deliveries DAG records them every 3 minutes); prints each feed's slots."""
    if not wanted:
        return True
    today = datetime.now(UTC).date()
    progress = Progress("expected deliveries")
    while True:
        slots = {w["feed"]: store.slots.between(today - timedelta(days=7), today + timedelta(days=1), feed=w["feed"])
                 for w in wanted}
        states = {w["feed"]: ("ok" if any(s["state"] == w["expect"] for s in slots[w["feed"]])
                              else f"no {w['expect']} slot yet") for w in wanted}
        if all(v == "ok" for v in states.values()) or progress.stalled:
            break
        if line := progress.observe(states):
            print(line, flush=True)
        time.sleep(2)
    print("\nExpected deliveries (watch_deliveries DAG; the Filegate page's Deliveries tab shows the calendar):")
    for w in wanted:
        counts = Counter(s["state"] for s in slots[w["feed"]])
        label = "ok " if states[w["feed"]] == "ok" else "BAD"
        print(f"  {label} {w['feed']:<20} slots of the last week: "
              f"{', '.join(f'{n} {st}' for st, n in sorted(counts.items())) or 'none recorded'} "
              f"(expected at least one {w['expect']})")
    return all(v == "ok" for v in states.values())


@dataclass
class Drop:
    """One dropped sample: how to find its status row, and rows of the same remote path from earlier runs."""

    item: dict[str, Any]
    label: str
    find: Callable[[], dict[str, Any] | None]
    earlier_ids: set[int] = field(default_factory=set)

    def status_as_expected(self, row: dict[str, Any] | None) -> bool:
        if row is None:
            return False
        if row["status"] == self.item["expect"]:
            return True
        # An SFTP sample always gets a new raw/ key; its content, delivered by an earlier `make run`, is then a
        # duplicate of that earlier file, which is what Filegate must say.
        return row["status"] == "duplicate" and row.get("duplicate_of") in self.earlier_ids


def _trigger(stack: Stack, token: str, dag_id: str) -> None:
    request = urllib.request.Request(
        f"{airflow_url(stack.ctx)}/api/v2/dags/{dag_id}/dagRuns", data=json.dumps({"logical_date": None}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def _drop_on_sftp(stack: Stack, token: str, store: Any, item: dict[str, Any]) -> Drop:
    from filegate.contracts import get_contract

    server = get_contract(item["feed"]).source.sftp
    if server is None:
        raise SystemExit(f"expected.yaml: {item['file']} says via: sftp, but feed {item['feed']} is not an SFTP feed")
    remote_path = f"{server.directory.rstrip('/')}/{Path(item['file']).name}"
    earlier_ids = {row["id"] for row in store.reads.find_by_source(item["feed"], [remote_path]).get(remote_path, [])}
    target = stack.ctx.paths.sftp_root / remote_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / item["file"], target)
    _trigger(stack, token, f"ingest_sftp_{item['feed']}")

    def find() -> dict[str, Any] | None:
        rows = store.reads.find_by_source(item["feed"], [remote_path]).get(remote_path, [])
        return next((row for row in rows if row["id"] not in earlier_ids), None)

    return Drop(item, f"sftp://127.0.0.1:{stack.ctx.ports.sftp}{remote_path}", find, earlier_ids)


def main() -> int:
    import boto3

    from filegate.status.store import StatusStore
    from filegate.storage import keys

    stack = Stack()
    env = stack.env()
    samples_plan = yaml.safe_load((SAMPLES / "expected.yaml").read_text())
    plan, deliveries = samples_plan["phases"], samples_plan.get("deliveries") or []
    token = login_token(stack.ctx)
    wait_for_dags(stack, token, {f"process_{f['feed']}" for phase in plan for f in phase}
                  | {f"ingest_sftp_{f['feed']}" for phase in plan for f in phase if f.get("via") == "sftp"}
                  | ({"watch_deliveries"} if deliveries else set()))
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    store = StatusStore.connect(env["FILEGATE_DB_URL"])
    today = datetime.now(UTC).date()
    results: list[tuple[Drop, dict[str, Any] | None]] = []
    started = time.monotonic()
    stalled_phase: int | None = None
    for number, phase in enumerate(plan, start=1):
        drops = []
        for item in phase:
            if item.get("via") == "sftp":
                drops.append(_drop_on_sftp(stack, token, store, item))
            else:
                key = keys.raw_key(item["feed"], today, Path(item["file"]).name)
                s3.upload_file(str(SAMPLES / item["file"]), env["FILEGATE_BUCKET"], key)
                drops.append(Drop(item, f"s3://{env['FILEGATE_BUCKET']}/{key}",
                                  lambda key=key: store.reads.find_by_raw_keys([key]).get(key)))
            print(f"phase {number}: dropped {drops[-1].label}", flush=True)
        progress = Progress(f"phase {number}")
        while True:
            rows = {drop.label: drop.find() for drop in drops}
            if all(row is not None and row["status"] in TERMINAL for row in rows.values()):
                break
            if line := progress.observe({label: row["status"] if row else "not registered yet"
                                         for label, row in rows.items()}):
                print(line, flush=True)
            if progress.stalled:
                stalled_phase = number
                break
            time.sleep(1)
        results += [(drop, rows[drop.label]) for drop in drops]
        if stalled_phase:
            break
    elapsed = time.monotonic() - started

    ok = stalled_phase is None
    if stalled_phase:
        print(f"\nStopped waiting in phase {stalled_phase}: no file changed status for {STALL_TIMEOUT_S} s "
              f"(see `.venv/bin/filegate-stack status` and the task logs); later phases were not dropped.")
        print(f"\nSample files so far ({elapsed:.0f} s since the first drop):")
    else:
        print(f"\nSample files ({elapsed:.0f} s from first drop to last terminal status):")
    for drop, row in results:
        item = drop.item
        status = row["status"] if row else "not registered"
        drift = store.schemas.drift_of(row["id"]) if row else None
        good = drop.status_as_expected(row) and _drift_as_expected(item, drift)
        ok &= good
        label = "ok " if good else ("..." if status not in TERMINAL else "BAD")
        print(f"  {label} {item['file']:<45} {status:<12} (expected {item['expect']})")
        if row and row["error"]:
            print(f"      reason: {row['error']}")
        if drift or "drift" in item:
            print(f"      schema drift ({drift['action'] if drift else 'none'}; expected "
                  f"{', '.join(item.get('drift') or ['none'])}): {drift['summary'] if drift else 'no drift record'}")
    ok &= wait_for_deliveries(store, deliveries)
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
    expected = sum(1 for drop, row in results if drop.status_as_expected(row))
    planned = sum(len(phase) for phase in plan)
    print(f"{expected} of {planned} sample files ended as expected: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
