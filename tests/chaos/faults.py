"""The faults the chaos run injects into a running local stack, each one logged with its time and target.

- EventRelay: moto's S3 notifications go to a tap queue per feed; the relay forwards each to the feed's real
  arrival queue 1-3 times (at-least-once delivery, copies up to a few seconds apart) or never (a lost event the
  sweep of a later run must make up for);
- TaskKiller: SIGKILL of a running task process at a chosen step (register, process, mid-Postgres load, deliver),
  either the task alone (its supervisor sees it die) or the task with its supervisor (a worker lost, as when MWAA
  scales workers down: only the scheduler's heartbeat check notices);
- kill_scheduler / restart_postgres: the scheduler (with every task it runs) once; the embedded Postgres that holds
  both the status store and Airflow's metadata; `Supervisor` then restarts what died, as the platform would;
- api_fault: the stub API's fault controls (5xx, 429 with Retry-After, timeouts, connection resets);
- api_outage: the API down for minutes (FILEGATE_CHAOS_OUTAGE_S), which deliveries must wait out;
- backfill: `airflow backfill create` of a sense_<feed> DAG over the dates the event-driven runs are busy with.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import psutil
import psycopg

log = logging.getLogger("chaos.faults")
STEPS = {"register": ("register_arrivals", "register_interval"), "process": ("process_files",),
         "deliver": ("deliver_records",)}


@dataclass
class FaultLog:
    started: float = field(default_factory=time.time)
    entries: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, detail: str, *, count: int = 1) -> None:
        with self.lock:
            for _ in range(count):
                self.entries.append((time.time(), kind, detail))
        print(f"  [{time.time() - self.started:7.1f} s] fault {kind}: {detail}", flush=True)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(Counter(kind for _, kind, _ in self.entries))

    def last_at(self, *, ignore: tuple[str, ...] = ()) -> float | None:
        with self.lock:
            times = [at for at, kind, _ in self.entries if kind not in ignore]
        return max(times) if times else None


# -- S3 events ------------------------------------------------------------------------------------------------------

class EventRelay(threading.Thread):
    """Forwards S3 notifications from tap queues to the arrival queues 0-3 times."""

    def __init__(self, sqs: Any, taps: dict[str, str], targets: dict[str, str], faults: FaultLog, *,
                 seed: int, lose: set[str]) -> None:
        super().__init__(name="chaos-event-relay", daemon=True)
        self.sqs, self.taps, self.targets, self.faults = sqs, taps, targets, faults
        self.rng = random.Random(seed)
        self.lose = lose  # raw keys whose event never arrives
        self.pending: list[tuple[float, str, str]] = []  # (due, feed, body) of delayed copies
        self.stop = threading.Event()
        self.forwarded = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._pump()
            except Exception as exc:  # moto busy or restarting: the messages stay in the tap queue
                log.warning("event relay: %s", exc)
                time.sleep(1)

    def _pump(self) -> None:
        now = time.time()
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, feed, body in due:
            self.sqs.send_message(QueueUrl=self.targets[feed], MessageBody=body)
            self.forwarded += 1
        for feed, tap in self.taps.items():
            messages = self.sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in messages.get("Messages", []):
                self._relay(feed, message["Body"])
                self.sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])
        time.sleep(0.2)

    def _relay(self, feed: str, body: str) -> None:
        try:
            records = json.loads(body).get("Records", [])
            key = unquote_plus(records[0]["s3"]["object"]["key"]) if records else ""
        except (ValueError, KeyError, IndexError):
            key = ""
        if key in self.lose:
            self.faults.add("s3_event_lost", key)
            return
        copies = self.rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        self.sqs.send_message(QueueUrl=self.targets[feed], MessageBody=body)
        self.forwarded += 1
        for _ in range(copies - 1):
            self.pending.append((time.time() + self.rng.uniform(0.5, 8), feed, body))
        if copies > 1:
            self.faults.add("s3_event_duplicated", f"{key} x{copies}", count=copies - 1)


def tap_queues(sqs: Any, s3: Any, bucket: str, feeds: list[str]) -> dict[str, str]:
    """Points the bucket's ObjectCreated notifications for `feeds` at a tap queue per feed, returns their URLs."""
    taps, configs = {}, []
    for feed in feeds:
        url = sqs.create_queue(QueueName=f"chaos-tap-{feed}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        taps[feed] = url
        configs.append({"Id": f"chaos-tap-{feed}", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"raw/{feed}/"}]}}})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs})
    for url in taps.values():  # moto posts an s3:TestEvent on configuration
        sqs.purge_queue(QueueUrl=url)
    return taps


# -- processes ------------------------------------------------------------------------------------------------------

def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1)


class TaskKiller:
    """Finds a running task instance of the chaos DAGs at a step and SIGKILLs its process."""

    def __init__(self, airflow_db_url: str, status_db_url: str, dag_ids: list[str], faults: FaultLog) -> None:
        self.airflow_db = psycopg_url(airflow_db_url)
        self.status_db = status_db_url
        self.dag_ids = dag_ids
        self.faults = faults

    def _running(self, task_ids: tuple[str, ...], dag_ids: list[str]) -> list[tuple[str, str, str]]:
        try:
            with psycopg.connect(self.airflow_db, connect_timeout=5) as conn:
                # First tries only: the run's kills alone never use up a task's retries (other faults may).
                return [(str(i), d, t) for i, d, t in conn.execute(
                    "SELECT id, dag_id, task_id FROM task_instance WHERE state = 'running' AND dag_id = ANY(%s) "
                    "AND task_id = ANY(%s) AND try_number = 1", (dag_ids, list(task_ids)))]
        except psycopg.Error:
            return []

    def _catch_load(self, table: str, seconds: float) -> bool:
        """Polls pg_stat_activity on one connection for `seconds`: True as soon as a load into `table` runs."""
        try:
            with psycopg.connect(self.status_db, connect_timeout=5, autocommit=True) as conn:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                        "AND (query ILIKE %s OR query ILIKE %s)", (f"%stage_{table}%", f"%{table}%ON CONFLICT%")
                    ).fetchone()
                    if row and row[0]:
                        return True
                    time.sleep(0.01)
        except psycopg.Error:
            pass
        return False

    @staticmethod
    def _process_of(ti_id: str) -> psutil.Process | None:
        title = f"airflow worker -- {ti_id}"
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if title in " ".join(proc.info["cmdline"] or []):
                    return proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return None

    def kill(self, step: str, *, worker: bool = False, dag_ids: list[str] | None = None,
             during_load_of: str | None = None, wait_s: float = 120) -> bool:
        """Waits up to `wait_s` for a running task at `step` (and, with `during_load_of`, a load into that table
        in progress), then SIGKILLs its process (with `worker`, its supervisor too). False if none showed up."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            candidates = [(ti_id, dag_id, task_id, proc)
                          for ti_id, dag_id, task_id in self._running(STEPS[step], dag_ids or self.dag_ids)
                          if (proc := self._process_of(ti_id)) is not None]
            # Mid-load: the processes are found first, then the kill follows the load's first sight at once.
            if not candidates or (during_load_of and not self._catch_load(during_load_of, 5)):
                time.sleep(0.3)
                continue
            for ti_id, dag_id, task_id, proc in candidates:
                victims = [proc]
                if worker and (parent := proc.parent()) is not None and "supervisor" in " ".join(parent.cmdline()):
                    victims.insert(0, parent)
                for victim in victims:
                    try:
                        victim.send_signal(signal.SIGKILL)
                    except psutil.NoSuchProcess:
                        continue
                kind = f"sigkill_{'worker' if worker else 'task'}_{'mid_pg_load' if during_load_of else step}"
                self.faults.add(kind, f"{dag_id}.{task_id} (ti …{ti_id[-8:]}, pid {proc.pid})")
                if not during_load_of:  # mid-load: every candidate, since any of them may be the one loading
                    return True
            return True
        log.warning("no running %s task showed up within %.0f s", step, wait_s)
        return False


class Supervisor(threading.Thread):
    """Restarts Airflow processes that died (as MWAA or a process manager would) and counts the restarts."""

    def __init__(self, stack: Any, faults: FaultLog) -> None:
        super().__init__(name="chaos-supervisor", daemon=True)
        self.stack, self.faults = stack, faults
        self.stop = threading.Event()
        self.paused = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            if not self.paused.is_set():
                self.check()

    def check(self) -> None:
        from filegate_stack.procs import read_pid

        airflow = self.stack.components["airflow"]
        for process in airflow.processes:
            record = read_pid(self.stack.ctx.paths.pid_file(process))
            if record is None or not record.alive():
                print(f"  supervisor: {process} is not running; starting it again", flush=True)
                airflow.relaunch(self.stack.ctx, process)


def kill_scheduler(stack: Any, faults: FaultLog) -> None:
    """SIGKILL of the scheduler's whole process group: with LocalExecutor that is every running task too."""
    from filegate_stack.procs import read_pid

    record = read_pid(stack.ctx.paths.pid_file("airflow-scheduler"))
    if record is None or not record.alive():
        return
    os.killpg(os.getpgid(record.pid), signal.SIGKILL)
    faults.add("sigkill_scheduler", f"scheduler pid {record.pid} and its task processes")


def restart_postgres(stack: Any, supervisor: Supervisor, faults: FaultLog) -> None:
    """Fast shutdown and start of the embedded Postgres (status store, destination tables, Airflow metadata)."""
    supervisor.paused.set()
    try:
        started = time.monotonic()
        stack.stop(["postgres"])
        time.sleep(3)
        stack.start(["postgres"])
        faults.add("postgres_restart", f"down {time.monotonic() - started:.1f} s")
    finally:
        supervisor.paused.clear()


# -- the stub API ---------------------------------------------------------------------------------------------------

API_FAULTS: dict[str, dict[str, Any]] = {
    "api_5xx": {"fail_next": 3, "fail_status": 503, "retry_after": None},
    "api_429_retry_after": {"fail_next": 3, "fail_status": 429, "retry_after": 2},
    "api_timeout": {"timeout_next": 1, "timeout_s": 35.0},
    "api_reset": {"reset_next": 3},
}


def api_fault(stub_url: str, kind: str, faults: FaultLog) -> None:
    body = json.dumps(API_FAULTS[kind]).encode()
    request = urllib.request.Request(f"{stub_url}/_stub/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()
    faults.add(kind, json.dumps(API_FAULTS[kind]))


def api_outage(stub_url: str, seconds: float, faults: FaultLog) -> None:
    """The API down for `seconds`: every request answered 503 until then (the stub's outage control)."""
    request = urllib.request.Request(f"{stub_url}/_stub/faults", data=json.dumps({"outage_for_s": seconds}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()
    faults.add("api_outage", f"{seconds:.0f} s of 503 for every request")
    # Its end is the fault's last moment (the settle time counts from there).
    ender = threading.Timer(seconds, faults.add, args=("api_outage_ended", f"after {seconds:.0f} s"))
    ender.daemon = True
    ender.start()


# -- backfill -------------------------------------------------------------------------------------------------------

def backfill(env: dict[str, str], dag_id: str, first: str, last: str, faults: FaultLog) -> None:
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    done = subprocess.run([airflow, "backfill", "create", "--dag-id", dag_id, "--from-date", first,
                           "--to-date", last], env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        print(f"  backfill of {dag_id} failed: {done.stderr[-1500:]}", flush=True)
        return
    faults.add("sensed_backfill", f"{dag_id} {first}..{last}")


def every(seconds: float, action: Callable[[], None], stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(seconds):
            try:
                action()
            except Exception as exc:
                log.warning("periodic fault failed: %s", exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread
