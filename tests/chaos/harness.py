"""The chaos run: starts its own local stack (Airflow included), sends the workload in bursts over four feeds while
faults are injected on a schedule, waits for the system to settle, audits the result from the sources of truth
and prints a report. `make chaos` runs it with 10,000 files; tests/chaos/test_chaos_small.py with a few hundred.

    FILEGATE_CHAOS_FILES=2000 .venv/bin/python tests/chaos/harness.py

Settings (environment): FILEGATE_CHAOS_FILES (default 10000), FILEGATE_CHAOS_SEED, FILEGATE_CHAOS_OUTAGE_S (the
API outage, default 300), FILEGATE_CHAOS_HOME (default a fresh temporary folder), FILEGATE_CHAOS_KEEP=1 leaves the
stack running. The report goes to <home>/chaos_report.json. Exit status 0 only if the auditor passed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for extra in (HERE, ROOT / "infra" / "local"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import auditor  # noqa: E402
import faults  # noqa: E402
from s3_proxy import S3FaultProxy  # noqa: E402
from workload import API_FEED, CONTRACTS, FEEDS, FTP_FEED, PG_FEED, PG_TABLE, UPLOAD_FEED, PlannedFile, plan  # noqa: E402

ACTIVE = ("pending", "downloaded", "queued", "processing")
DAG_FILES = ("process_feeds.py", "sense_feeds.py", "ingest_ftp.py", "recover_stalled_files.py")
STALL_S = float(os.environ.get("FILEGATE_CHAOS_STALL_S", "600"))
LAMBDA_TIMEOUT_S = 20


@dataclass
class Settings:
    files: int = 10_000
    seed: int = 13
    home: Path | None = None
    keep: bool = False
    burst_gap_s: float = 15.0
    bursts: int = 10
    stall_s: float = STALL_S
    outage_s: float = 300.0  # the API down this long once, mid-run: deliveries must wait it out on their own
    snapshot: bool = True  # run a copy of the library taken at the start (FILEGATE_CHAOS_SNAPSHOT=0: the tree)

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("FILEGATE_CHAOS_HOME")
        return cls(files=int(os.environ.get("FILEGATE_CHAOS_FILES", "10000")),
                   seed=int(os.environ.get("FILEGATE_CHAOS_SEED", "13")),
                   outage_s=float(os.environ.get("FILEGATE_CHAOS_OUTAGE_S", "300")),
                   home=Path(home) if home else None, keep=os.environ.get("FILEGATE_CHAOS_KEEP") == "1",
                   snapshot=os.environ.get("FILEGATE_CHAOS_SNAPSHOT", "1") != "0")


@dataclass
class RunResult:
    report: auditor.AuditReport
    faults: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.report.passed


class ChaosRun:
    def __init__(self, settings: Settings) -> None:
        from filegate_stack.config import Ports, StackConfig
        from filegate_stack.stack import Stack

        self.settings = settings
        self.home = (settings.home or Path(tempfile.mkdtemp(prefix="filegate-chaos-"))).resolve()
        feeds_dir, dags = self.home / "feeds", self.home / "dags"
        feeds_dir.mkdir(parents=True, exist_ok=True)
        dags.mkdir(parents=True, exist_ok=True)
        for name, text in CONTRACTS.items():
            (feeds_dir / f"{name}.yaml").write_text(text)
        snapshot = self.home / "snapshot"
        if settings.snapshot:
            # Other people edit the working tree while the run lasts: the stack runs a copy taken now.
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.copytree(ROOT / "include" / "filegate", snapshot / "filegate",
                            ignore=shutil.ignore_patterns("__pycache__"))
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot), os.environ.get("PYTHONPATH")]))
        for dag_file in DAG_FILES:
            if not (dags / dag_file).exists():
                shutil.copy2(ROOT / "dags" / dag_file, dags / dag_file)
        self.lambda_dir = self.home / "lambda_faults"
        # The stack's processes inherit os.environ.
        os.environ.update({
            "FILEGATE_FEEDS_DIR": str(feeds_dir),
            # A loaded 2-core machine can outlast Airflow's 30 s parse limit; the run would measure that.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "240",
            # A lost worker's task is failed (and retried) after this long without a heartbeat; default 300 s.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        })
        os.environ.pop("FILEGATE_FEEDS", None)
        lambda_env = {"CHAOS_LAMBDA_DIR": str(self.lambda_dir), "CHAOS_LAMBDA_TIMEOUT_S": str(LAMBDA_TIMEOUT_S)}
        config = StackConfig(dags_folder=dags, feeds=None, db_url=None, airflow_db_url=None, stub_api_token=None,
                             startup_timeout=180, extra_pythonpath=[str(HERE)], extra_functions={
                                 "filegate-process-file": {"handler": "lambda_faults.handler", "memory": 3008,
                                                           "timeout": LAMBDA_TIMEOUT_S, "env": lambda_env}})
        ports = Ports.free()
        # Filegate's S3 traffic (tasks, Lambda, the upload endpoint) goes through the fault proxy; the run's own
        # puts and the auditor talk to moto directly.
        self.s3_proxy = S3FaultProxy(ports.moto, seed=settings.seed).start()
        config = dataclasses.replace(config, s3_endpoint_url=self.s3_proxy.url)
        self.stack = Stack(self.home / "stack", ports, config)
        self.log = faults.FaultLog()
        self.sent: list[PlannedFile] = []
        self.sent_lock = threading.Lock()
        self.stalled = False

    # -- setup ----------------------------------------------------------------------------------------------------
    def start(self) -> None:
        import boto3

        from filegate_stack.airflow import login_token
        from filegate_stack.samples import wait_for_dags

        started = time.monotonic()
        self.stack.start()
        self.env = {**os.environ, **self.stack.env()}
        self.token = login_token(self.stack.ctx)
        self.dag_ids = [f"process_{f}" for f in FEEDS] + [f"sense_{f}" for f in (PG_FEED, API_FEED)]
        wait_for_dags(self.stack, self.token, {*self.dag_ids, f"ingest_ftp_{FTP_FEED}"})
        aws = {"endpoint_url": self.env["AWS_ENDPOINT_URL"], "region_name": "us-east-1",
               "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.s3, self.sqs = boto3.client("s3", **aws), boto3.client("sqs", **aws)
        self.bucket = self.env["FILEGATE_BUCKET"]
        self.ftp_dir = self.stack.ctx.paths.ftp_root / "chaos"
        self.ftp_dir.mkdir(parents=True, exist_ok=True)
        print(f"stack up in {time.monotonic() - started:.0f} s (home {self.home}, Airflow "
              f"http://127.0.0.1:{self.stack.ports.airflow})", flush=True)

    # -- sending ----------------------------------------------------------------------------------------------------
    def send(self, planned: PlannedFile) -> None:
        from filegate.storage import keys

        if planned.feed in (PG_FEED, API_FEED):
            planned.raw_key = keys.raw_key(planned.feed, planned.day, planned.name)
            self.s3.put_object(Bucket=self.bucket, Key=planned.raw_key, Body=planned.body)
        elif planned.feed == FTP_FEED:
            partial = self.ftp_dir / f".{planned.name}.part"
            partial.write_bytes(planned.body)
            partial.rename(self.ftp_dir / planned.name)  # appears whole, as a partner's rename-on-complete
        else:
            planned.raw_key = self.upload(planned)
        planned.sent_at = time.time()
        with self.sent_lock:
            self.sent.append(planned)

    def upload(self, planned: PlannedFile) -> str:
        import requests

        url = f"http://127.0.0.1:{self.stack.ports.airflow}/filegate/api/feeds/{UPLOAD_FEED}/files"
        for attempt in range(10):  # the api-server may be restarting after a fault: the user tries again
            try:
                response = requests.post(url, files=[("file", (planned.name, planned.body, "text/csv"))],
                                         headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
                if response.status_code == 201:
                    return str(response.json()["raw_key"])
                print(f"  upload of {planned.name}: HTTP {response.status_code} {response.text[:200]}", flush=True)
            except requests.RequestException as exc:
                print(f"  upload of {planned.name}: {exc}", flush=True)
            time.sleep(2 + attempt)
        raise RuntimeError(f"upload of {planned.name} never succeeded")

    def send_all(self, files: list[PlannedFile]) -> None:
        size = max(10, -(-len(files) // self.settings.bursts))
        with ThreadPoolExecutor(8) as pool:
            for number, start in enumerate(range(0, len(files), size), start=1):
                burst = files[start : start + size]
                list(pool.map(self.send, burst))
                print(f"  burst {number}: {len(burst)} files sent ({len(self.sent)} so far)", flush=True)
                time.sleep(self.settings.burst_gap_s)

    # -- the fault schedule -------------------------------------------------------------------------------------------
    def schedule(self, supervisor: faults.Supervisor, done_sending: threading.Event) -> None:
        """Runs the planned faults in order, a few seconds apart, while (and a little after) files are sent."""
        killer = faults.TaskKiller(self.env["FILEGATE_AIRFLOW_DB_URL"], self.env["FILEGATE_DB_URL"],
                                   self.dag_ids, self.log)
        today = datetime.now(UTC).date()
        pg_dags = [f"process_{PG_FEED}", f"sense_{PG_FEED}"]
        api_dags = [f"process_{API_FEED}", f"sense_{API_FEED}"]
        steps: list[tuple[str, Any]] = [
            ("backfill", lambda: [faults.backfill(self.env, f"sense_{feed}", (today - timedelta(days=2)).isoformat(),
                                                  (today - timedelta(days=1)).isoformat(), self.log)
                                  for feed in (PG_FEED, API_FEED)]),
            ("kill register", lambda: killer.kill("register")),
            ("kill process", lambda: killer.kill("process")),
            ("kill mid-load", lambda: killer.kill("process", dag_ids=pg_dags, during_load_of=PG_TABLE)),
            ("kill deliver", lambda: killer.kill("deliver", dag_ids=api_dags)),
            ("kill worker", lambda: killer.kill("process", worker=True)),
            ("kill scheduler", lambda: faults.kill_scheduler(self.stack, self.log)),
            ("restart postgres", lambda: faults.restart_postgres(self.stack, supervisor, self.log)),
            ("api outage", lambda: faults.api_outage(f"http://127.0.0.1:{self.stack.ports.stub_api}",
                                                           self.settings.outage_s, self.log)),
            ("kill register", lambda: killer.kill("register")),
            ("kill mid-load", lambda: killer.kill("process", dag_ids=pg_dags, during_load_of=PG_TABLE)),
            ("kill deliver", lambda: killer.kill("deliver", dag_ids=api_dags, worker=True)),
        ]
        spacing = max(5.0, self.settings.burst_gap_s * self.settings.bursts / (len(steps) + 2))
        for name, action in steps:
            time.sleep(spacing)
            try:
                action()
            except Exception as exc:
                print(f"  fault step {name!r} failed: {exc!r}", flush=True)

    # -- settling ---------------------------------------------------------------------------------------------------
    def file_states(self) -> dict[str, str]:
        import psycopg

        try:
            with psycopg.connect(self.env["FILEGATE_DB_URL"], connect_timeout=5) as conn:
                return dict(conn.execute("SELECT raw_key, status FROM file WHERE feed = ANY(%s)", (list(FEEDS),)))
        except psycopg.Error:
            return {}

    def settled(self, states: dict[str, str]) -> bool:
        with self.sent_lock:
            wanted = [f.raw_key for f in self.sent if f.raw_key]
            ftp = sum(1 for f in self.sent if f.feed == FTP_FEED)
        if any(s in ACTIVE for s in states.values()):
            return False
        if any(k not in states for k in wanted):
            return False
        return sum(1 for k in states if k.startswith(f"raw/{FTP_FEED}/")) >= ftp

    def wait_settled(self) -> float:
        last_change, previous = time.monotonic(), None
        while True:
            states = self.file_states()
            if self.settled(states):
                return time.time()
            summary = dict(sorted({s: list(states.values()).count(s) for s in set(states.values())}.items()))
            if summary != previous:
                previous, last_change = summary, time.monotonic()
                print(f"  settling: {sum(summary.values())} files known: {summary}", flush=True)
            if time.monotonic() - last_change > self.settings.stall_s:
                print(f"  nothing moved for {self.settings.stall_s:.0f} s: auditing as is", flush=True)
                self.stalled = True
                return time.time() - self.settings.stall_s
            time.sleep(3)

    # -- the run ----------------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        today = datetime.now(UTC).date()
        workload = plan(self.settings.files, seed=self.settings.seed, today=today)
        rng = random.Random(self.settings.seed)
        # About 3 % of the S3 feeds' events never arrive (at least one). Each S3 feed's last file (the copy sent
        # at the end) always has its event, so a later run sweeps the prefix and must find the files whose event
        # was lost (in production: the next arrival, or the hourly sense_<feed> run).
        s3_files = [f for f in workload.files if f.feed in (PG_FEED, API_FEED)]
        lose = {faults_key(f) for f in s3_files[:-4] if rng.random() < 0.03}
        lose = lose or {faults_key(s3_files[len(s3_files) // 2])}
        taps = faults.tap_queues(self.sqs, self.s3, self.bucket, list(FEEDS))
        targets = {feed: self.stack.ctx.state["aws"]["queues"][feed] for feed in FEEDS}
        relay = faults.EventRelay(self.sqs, taps, targets, self.log, seed=self.settings.seed, lose=lose)
        supervisor = faults.Supervisor(self.stack, self.log)
        relay.start()
        supervisor.start()
        stop_api_faults = threading.Event()
        kinds = list(faults.API_FAULTS)
        stub = f"http://127.0.0.1:{self.stack.ports.stub_api}"
        counter = iter(range(10**9))
        faults.every(12, lambda: faults.api_fault(stub, kinds[next(counter) % len(kinds)], self.log), stop_api_faults)
        faults.every(20, lambda: self.s3_proxy.state.open_window(6, 0.15), stop_api_faults)
        done_sending = threading.Event()
        scheduler = threading.Thread(target=self.schedule, args=(supervisor, done_sending), daemon=True)
        first_send = time.time()
        scheduler.start()
        main_files = [f for f in workload.files if not f.note.startswith(("same content", "uploaded twice"))]
        self.send_all(main_files)
        for late in (f for f in workload.files if f not in main_files):  # the copies after their originals
            self.send(late)
        done_sending.set()
        scheduler.join()
        stop_api_faults.set()
        settled_at = self.wait_settled()
        relay.stop.set()
        supervisor.stop.set()
        for marker in sorted(self.lambda_dir.glob("*")) if self.lambda_dir.exists() else []:
            kind, _, key = marker.read_text().strip().partition(" ")
            self.log.entries.append((marker.stat().st_mtime, kind, key))
        for at, kind in self.s3_proxy.state.times:
            self.log.entries.append((at, kind, "S3 request"))
        last_fault = self.log.last_at(ignore=("s3_event_duplicated", "s3_event_lost")) or first_send
        print("auditing ...", flush=True)
        seen = auditor.collect(self.s3, self.bucket, self.env["FILEGATE_DB_URL"],
                               self.stack.ctx.paths.stub_api / "requests.jsonl")
        report = auditor.audit(self.sent, seen)
        minutes = max(settled_at - first_send, 1) / 60
        figures = {
            "files_sent": len(self.sent),
            "files_per_min_under_faults": round(len(self.sent) / minutes, 1),
            "minutes_first_send_to_settled": round(minutes, 1),
            "settled": not self.stalled,  # False: stopped waiting; the times are until the last change
            "settle_s_after_last_fault": round(settled_at - last_fault, 1),
            "events_forwarded": relay.forwarded,
            "files_that_waited_for_the_api": self.files_that_waited(),
        }
        return RunResult(report, self.log.counts(), figures)

    def files_that_waited(self) -> dict[str, int]:
        """Files whose delivery waited for the API (a `delivery waiting` line in their history), by final status:
        the outage is survived when they ended `processed` on their own."""
        import psycopg

        with psycopg.connect(self.env["FILEGATE_DB_URL"], connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT f.status, count(*) FROM file f WHERE f.feed = ANY(%s) AND EXISTS (SELECT 1 FROM file_event e"
                " WHERE e.file_id = f.id AND e.message LIKE 'delivery waiting%%') GROUP BY f.status",
                (list(FEEDS),)).fetchall()
        return {status: int(n) for status, n in rows}

    def stop(self) -> None:
        if self.settings.keep:
            print(f"stack left running (home {self.stack.home})", flush=True)
            return
        self.s3_proxy.stop()
        leftovers = self.stack.stop()
        print(f"stack stopped{'; leftover pids ' + str(leftovers) if leftovers else ''}", flush=True)


def faults_key(planned: PlannedFile) -> str:
    from filegate.storage import keys

    return keys.raw_key(planned.feed, planned.day, planned.name)


def render(result: RunResult) -> str:
    lines = ["", "== chaos run report ==", "faults injected (by kind):"]
    lines += [f"  {kind:<32} {n}" for kind, n in sorted(result.faults.items())]
    lines.append("figures:")
    lines += [f"  {name:<32} {value}" for name, value in result.figures.items()]
    counts = result.report.counts
    lines.append("auditor (sources of truth):")
    lines.append(f"  lost {counts['lost'] + counts['unregistered']}, duplicate rows {counts['pg_duplicate_rows']}, "
                 f"duplicate records {counts['api_duplicate_records']}, stuck {counts['stuck']}; "
                 f"failed or quarantined with a reason {counts.get('not_processed', 0)}")
    lines.append(result.report.summary())
    lines.append(f"result: {'PASSED' if result.passed else 'FAILED'}")
    return "\n".join(lines)


def run_chaos(settings: Settings) -> RunResult:
    saved = dict(os.environ)  # the run sets variables for its stack; a pytest session goes on without them
    try:
        chaos = ChaosRun(settings)
        try:
            chaos.start()
            result = chaos.run()
        finally:
            chaos.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = render(result)
    print(text, flush=True)
    (chaos.home / "chaos_report.json").write_text(json.dumps(
        {"faults": result.faults, "figures": result.figures, "audit": result.report.counts,
         "problems": result.report.problems, "passed": result.passed}, indent=2))
    return result


if __name__ == "__main__":
    raise SystemExit(0 if run_chaos(Settings.from_env()).passed else 1)
