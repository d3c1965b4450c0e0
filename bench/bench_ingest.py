"""Ingestion benchmarks on a local stack with the real Airflow scheduler, started here and stopped at the end.

(a) latency from an S3 upload to the file's `processed` status, event-driven (S3 → SQS → AssetWatcher →
    process_<feed>), against its floor: the same path driving noop_floor_floor_evt (bench/dags/noop_floors.py),
    a DAG of process_<feed>'s shape whose tasks do nothing, timed from the upload to its last task's end. The two
    take turns, FILEGATE_BENCH_EVENT_SAMPLES each (default 5), medians; goal ≤ 1.5x the floor. Also printed: the
    sensed path (a backfill of sense_<feed> over three dates, timed from the upload; in production add the wait
    for the data interval to close, on average half the schedule period);
(b) FILEGATE_BENCH_BURST small files (default 1,000) uploaded at once, to all `processed`, against the same burst
    through noop_floor_floor_burst (same AssetWatcher/SQS path, same batching by asset events, same tasks, doing
    nothing), timed from the first upload; FILEGATE_BENCH_BURST_ROUNDS turns each (default 2), medians; goals
    ≥ 1,000 files/min and ≤ 1.5x the floor's time. FILEGATE_BENCH_BASELINE=100 adds the old comparison with
    bench/dags/baseline_per_file.py (one task instance per file per step; slow, so off by default);
(c) peak RSS (VmHWM) of a process streaming a file from the stack's FTP server to S3, then from its SFTP
    server (FILEGATE_BENCH_PROTOCOLS=sftp for SFTP alone), against its floor: a process that only imports the
    same libraries. The two take turns for FILEGATE_BENCH_MEMORY_ROUNDS rounds (default 3), medians; goal ≤ 100 MB
    above the floor. The file is 256 MB by default: FILEGATE_BENCH_BIG_MB=2048 for the 2 GB figure. The naive
    whole-file-in-memory copy of a 256 MB FTP file is shown beside it.

The floor DAGs' shape (task ids, dependencies, max_active_runs) is read from the real process_<feed> DAGs in a
DagBag before Airflow starts, and checked against the running Airflow's. `main()` returns the figures for
`make bench`'s table. FILEGATE_BENCH_PARTS=c runs (c) alone, without Airflow.

Ports: FILEGATE_*_PORT variables if FILEGATE_AIRFLOW_PORT is set, else free ones. FILEGATE_BENCH_HOME sets the
stack's home (default: a fresh temporary folder).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from figures import Figure, median_of

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}
BURST = int(os.environ.get("FILEGATE_BENCH_BURST", "1000"))
BURST_ROUNDS = int(os.environ.get("FILEGATE_BENCH_BURST_ROUNDS", "2"))
BASELINE = int(os.environ.get("FILEGATE_BENCH_BASELINE", "0"))
BIG_MB = int(os.environ.get("FILEGATE_BENCH_BIG_MB", "256"))
MEMORY_ROUNDS = int(os.environ.get("FILEGATE_BENCH_MEMORY_ROUNDS", "3"))
RSS_ABOVE_FLOOR_MB = 100.0
EVENT_SAMPLES = int(os.environ.get("FILEGATE_BENCH_EVENT_SAMPLES", "5"))
PARTS = os.environ.get("FILEGATE_BENCH_PARTS", "abc")  # e.g. "c" for the memory figure alone (no Airflow)
PROTOCOLS = os.environ.get("FILEGATE_BENCH_PROTOCOLS", "ftp,sftp").split(",")
GOALS = {"event_over_floor": 1.5, "burst_over_floor": 1.5, "files_per_min": 1000.0, "speedup": 5.0}

CONTRACT = """
name: {name}
description: Benchmark feed {name}.
owner: bench
source: {{kind: s3, pattern: "*.csv"{extra}}}
format: {{type: csv}}
schema:
  columns:
    - {{name: id, type: int, nullable: false}}
    - {{name: amount, type: decimal, scale: 2, nullable: false}}
    - {{name: label, type: string}}
destinations:
  api: {{endpoint: /v1/bench, batch_size: 100}}
"""
# Daily sensed schedules everywhere: a sense DAG's first run (catchup off) then owns yesterday, not the dates
# measured here; bench_sensed is backfilled over dates older than that.
FEEDS = dict.fromkeys(("bench_evt", "bench_sensed", "bench_burst", "bench_base"), ', sensed_schedule: "@daily"')
# Floor feed → the feed whose process_<feed> DAG its no-op floor copies. A floor feed has no contract (so no
# process_<floor feed> DAG), only its own SQS queue and S3 notification on raw/<floor feed>/ (the stack's feeds).
FLOORS = {"floor_evt": "bench_evt", "floor_burst": "bench_burst"}
PROCESS_DAGS = ROOT / "dags" / "process_feeds.py"
DAG_FILES = [PROCESS_DAGS, ROOT / "dags" / "sense_feeds.py", ROOT / "bench" / "dags" / "baseline_per_file.py",
             ROOT / "bench" / "dags" / "noop_floors.py"]
# Run in a fresh interpreter with a throwaway AIRFLOW_HOME: the real DAGs' shapes, as the dag-processor sees them.
SHAPE_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
    sys.exit(f"import errors: {bag.import_errors}")
print(json.dumps({d: {"max_active_runs": bag.dags[d].max_active_runs,
                      "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in bag.dags[d].tasks}}
                  for d in sys.argv[2:]}))
"""

MEMORY_PROBE = ROOT / "bench" / "pickup_memory_probe.py"


def timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class FloorRuns:
    """Which raw keys the finished runs of a no-op floor DAG consumed (the S3 events in their triggering asset
    events) and when each such run's last task ended: the floor's equivalent of a file's `processed` time."""

    def __init__(self, bench: Bench, dag_id: str) -> None:
        self.bench, self.dag_id = bench, dag_id
        self.examined: set[str] = set()
        self.ended: dict[str, float] = {}
        self.run_of: dict[str, dict[str, Any]] = {}  # key → the run that consumed its event
        self.failed: list[str] = []

    def poll(self) -> None:
        from filegate.ingestion.arrivals import keys_from_s3_events

        base = f"/api/v2/dags/{self.dag_id}/dagRuns"
        for run in self.bench.pages(f"{base}?state=success&state=failed", "dag_runs"):
            run_id = run["dag_run_id"]
            if run_id in self.examined:
                continue
            self.examined.add(run_id)
            if run["state"] != "success":
                self.failed.append(run_id)
                print(f"  {self.dag_id} run {run_id} ended {run['state']}", flush=True)
            events = self.bench.api("GET", f"{base}/{run_id}/upstreamAssetEvents")["asset_events"]
            messages = [m for e in events for m in ((e.get("extra") or {}).get("payload") or {}).get("message_batch")
                        or []]
            tasks = self.bench.pages(f"{base}/{run_id}/taskInstances", "task_instances")
            last_end = max((timestamp(t["end_date"]) for t in tasks if t.get("end_date")),
                           default=timestamp(run["end_date"]))
            for key in keys_from_s3_events(messages):
                self.ended[key] = last_end
                self.run_of[key] = run

    def wait(self, keys: list[str], timeout_s: float, stall_s: float = 120) -> dict[str, float]:
        """{key: end of the last task of the run that consumed its event} for `keys`, once all are in, or when
        nothing new came for `stall_s` (an S3 event that never reaches the queue has no sweep to catch it here)."""
        deadline = time.monotonic() + timeout_s
        progressed, seen = time.monotonic(), -1
        while True:
            self.poll()
            found = {k: self.ended[k] for k in keys if k in self.ended}
            if len(found) != seen:
                progressed, seen = time.monotonic(), len(found)
            stalled = time.monotonic() - progressed > stall_s
            if len(found) == len(keys) or time.monotonic() > deadline or stalled:
                if len(found) < len(keys):
                    print(f"  {'stalled' if stalled else 'timed out'}: the events of {len(found)}/{len(keys)} "
                          f"keys went through {self.dag_id}", flush=True)
                return found
            time.sleep(1)


class Bench:
    def __init__(self) -> None:
        from filegate_stack.config import Ports, StackConfig
        from filegate_stack.stack import Stack

        self.home = Path(os.environ.get("FILEGATE_BENCH_HOME") or tempfile.mkdtemp(prefix="filegate-bench-ingest-"))
        feeds, dags = self.home / "feeds", self.home / "dags"
        feeds.mkdir(parents=True, exist_ok=True)
        dags.mkdir(parents=True, exist_ok=True)
        for name, extra in FEEDS.items():
            (feeds / f"{name}.yaml").write_text(CONTRACT.format(name=name, extra=extra))
        for dag_file in DAG_FILES:
            link = dags / dag_file.name
            if not link.exists():
                link.symlink_to(dag_file)
        # The stack's children inherit os.environ: they must read the bench contracts.
        os.environ["FILEGATE_FEEDS_DIR"] = str(feeds)
        os.environ.pop("FILEGATE_FEEDS", None)
        # On a loaded 2-core machine a worker's DAG-file parse can exceed Airflow's 30 s default and the task is
        # rescheduled again and again; the figures would then measure that, not Filegate.
        os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "180")
        os.environ.setdefault("AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT", "240")
        ports = Ports.from_env() if os.environ.get("FILEGATE_AIRFLOW_PORT") else Ports.free()
        self.stack = Stack(self.home / "stack", ports, StackConfig(dags_folder=dags, feeds=[*FEEDS, *FLOORS],
                                                                   db_url=None, airflow_db_url=None,
                                                                   stub_api_token=None))
        self.env: dict[str, str] = {}
        self.token = ""
        self.shapes: dict[str, dict[str, Any]] = {}
        self.floor_runs = {floor: FloorRuns(self, f"noop_floor_{floor}") for floor in FLOORS}

    def start(self) -> None:
        import boto3

        from filegate.status.store import StatusStore
        from filegate_stack.airflow import login_token
        from filegate_stack.samples import wait_for_dags
        from filegate_stack.stack import COMPONENT_NAMES

        started = time.monotonic()
        airflow = bool(set(PARTS) & {"a", "b"})
        self.stack.start([name for name in COMPONENT_NAMES if name != "airflow"] if airflow
                         else ["postgres", "moto", "ftp", "sftp"])
        self.env = {**os.environ, **self.stack.env()}
        if airflow:
            # Before Airflow starts: the floor DAGs are parsed from these shapes (bench/dags/noop_floors.py).
            self.shapes = self.process_shapes()
            shapes_file = self.home / "noop_floor_shapes.json"
            shapes_file.write_text(json.dumps({floor: {"copy_of": feed, **self.shapes[f"process_{feed}"]}
                                               for floor, feed in FLOORS.items()}, indent=2))
            os.environ["FILEGATE_BENCH_NOOP_SHAPES"] = str(shapes_file)
            self.stack.start(["airflow"])
            self.env = {**os.environ, **self.stack.env()}
            self.token = login_token(self.stack.ctx)
            wait_for_dags(self.stack, self.token, {f"process_{f}" for f in FEEDS} | {"sense_bench_sensed",
                                                                                    "baseline_per_file"}
                          | {f"noop_floor_{f}" for f in FLOORS})
            # These feeds are measured by other means; their event-driven DAGs must not take the files first.
            for dag_id in ("process_bench_sensed", "process_bench_base"):
                self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
            self.check_floor_shapes()
        self.s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.bucket = self.env["FILEGATE_BUCKET"]
        self.store = StatusStore.connect(self.env["FILEGATE_DB_URL"])
        print(f"stack up{' with Airflow on port ' + str(self.stack.ports.airflow) if airflow else ''} in "
              f"{time.monotonic() - started:.0f} s (home {self.home})", flush=True)

    def process_shapes(self) -> dict[str, dict[str, Any]]:
        """process_<feed>'s tasks, their upstream tasks and max_active_runs, from a DagBag of the real DAG file."""
        dag_ids = sorted({f"process_{feed}" for feed in FLOORS.values()})
        env = {**self.env, "AIRFLOW_HOME": str(self.home / "dagbag-airflow-home"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(PROCESS_DAGS.parent)}
        out = subprocess.run([sys.executable, "-c", SHAPE_SCRIPT, str(PROCESS_DAGS), *dag_ids], env=env,
                             capture_output=True, text=True, timeout=600, check=False)
        if out.returncode:
            raise RuntimeError(f"reading the shape of {dag_ids} from a DagBag failed:\n{out.stderr[-4000:]}")
        shapes: dict[str, dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
        for dag_id, shape in shapes.items():
            print(f"  {dag_id}: {len(shape['tasks'])} tasks {shape['tasks']}, max_active_runs "
                  f"{shape['max_active_runs']}", flush=True)
        return shapes

    def check_floor_shapes(self) -> None:
        """The floor DAGs Airflow runs have the real DAGs' tasks: a floor with fewer tasks would flatter Filegate."""
        for floor, feed in FLOORS.items():
            real = self.api("GET", f"/api/v2/dags/process_{feed}/tasks")["tasks"]
            noop = self.api("GET", f"/api/v2/dags/noop_floor_{floor}/tasks")["tasks"]
            shape = {t["task_id"]: sorted(t["downstream_task_ids"]) for t in real}
            if shape != {t["task_id"]: sorted(t["downstream_task_ids"]) for t in noop}:
                raise RuntimeError(f"noop_floor_{floor} does not have the shape of process_{feed}: {real} / {noop}")

    def pages(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paged Airflow API list (the API caps each page at 100)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", f"{path}{'&' if '?' in path else '?'}limit=100&offset={len(items)}")
            items.extend(page[key])
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from filegate_stack.airflow import airflow_url

        request = urllib.request.Request(f"{airflow_url(self.stack.ctx)}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def put(self, feed: str, day: Any, name: str, n: int) -> tuple[str, float]:
        key = f"raw/{feed}/{day:%Y/%m/%d}/{name}"
        # The name is in the content: a later round's files must not be duplicates (by content) of an earlier one's.
        body = f"id,amount,label\n{n},{n % 1000}.25,{name}\n{n + 1_000_000},1.00,second row\n".encode()
        put_at = time.time()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key, put_at

    def wait_terminal(self, keys: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            rows: dict[str, dict[str, Any]] = {}
            for start in range(0, len(keys), 500):
                rows.update(self.store.reads.find_by_raw_keys(keys[start : start + 500]))
            done = sum(1 for k in keys if k in rows and rows[k]["status"] in TERMINAL)
            if done == len(keys) or time.monotonic() > deadline:
                if done < len(keys):
                    print(f"  timed out: {done}/{len(keys)} files terminal after {timeout_s:.0f} s", flush=True)
                return rows
            time.sleep(0.5)

    def task_instances(self, dag_id: str) -> tuple[int, int]:
        """(runs, task instances) of a DAG so far."""
        runs = self.pages(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs")
        return len(runs), sum(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/taskInstances"
                                              "?limit=1")["total_entries"] for r in runs)

    def wait_idle(self, dag_ids: list[str], timeout_s: float = 300) -> None:
        """Until no run of these DAGs is queued or running: the next round starts on a quiet scheduler."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = sum(self.api("GET", f"/api/v2/dags/{d}/dagRuns?state=queued&state=running&limit=1")
                       ["total_entries"] for d in dag_ids)
            if not busy:
                return
            time.sleep(1)
        print(f"  runs of {dag_ids} still active after {timeout_s:.0f} s", flush=True)

    # -- (a) ----------------------------------------------------------------------------------------------

    def event_sample(self, n: int) -> tuple[float | None, dict[str, float]]:
        """One small file through process_bench_evt: seconds from the upload to its `processed` status, and
        where they went (`phases`)."""
        key, put_at = self.put("bench_evt", datetime.now(UTC).date(), f"lat-{n}.csv", n)
        row = self.wait_terminal([key], 300).get(key)
        if not row or row["status"] != "processed":
            return None, {}
        done_at = row["finished_at"].timestamp()
        # The first run queued after the upload: with one file per turn it is the one that took the file.
        runs = [r for r in self.pages("/api/v2/dags/process_bench_evt/dagRuns", "dag_runs")
                if r.get("queued_at") and timestamp(r["queued_at"]) >= put_at - 1]
        run = min(runs, key=lambda r: timestamp(r["queued_at"]), default=None)
        if run is None:
            return done_at - put_at, {}
        deadline = time.monotonic() + 60  # the file is `processed` a moment before its last task ends
        while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            run = self.api("GET", f"/api/v2/dags/process_bench_evt/dagRuns/{run['dag_run_id']}")
        return done_at - put_at, self.phases("process_bench_evt", run, put_at, done_at)

    def floor_event_sample(self, n: int) -> tuple[float | None, dict[str, float]]:
        """One small file through the no-op floor: seconds from the upload to the end of its run's last task, and
        where they went (`phases`)."""
        floor = self.floor_runs["floor_evt"]
        key, put_at = self.put("floor_evt", datetime.now(UTC).date(), f"lat-{n}.csv", n)
        ended = floor.wait([key], 300)
        if key not in ended:
            return None, {}
        return ended[key] - put_at, self.phases(floor.dag_id, floor.run_of[key], put_at, ended[key])

    def phases(self, dag_id: str, run: dict[str, Any], put_at: float, done_at: float) -> dict[str, float]:
        """Airflow's own timings of the run that took a file, as seconds: from the upload to the run being queued
        (S3 → SQS → triggerer → asset event → run), then per task the wait from its upstream's end (or the run's
        queueing) to its start (scheduler + executor) and its run (process start, DAG file parse, imports, work),
        then from the last task's end to the file's end mark."""
        tasks = sorted((t for t in self.pages(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances",
                                              "task_instances") if t.get("start_date") and t.get("end_date")),
                       key=lambda t: timestamp(t["start_date"]))
        queued = timestamp(run["queued_at"])
        out = {"event → run queued": queued - put_at}
        previous_end = queued
        for task in tasks:
            start, end = timestamp(task["start_date"]), timestamp(task["end_date"])
            out[f"{task['task_id']}: wait"] = start - previous_end
            out[f"{task['task_id']}: run"] = end - start
            previous_end = end
        out["last task → end mark"] = done_at - previous_end
        return out

    def sensed_latency(self) -> tuple[list[float], dict[str, Any]]:
        """Backfill of three past dates through the real scheduler, one file per date and one outside."""
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=n) for n in (4, 3, 2)]
        outside, _ = self.put("bench_sensed", today - timedelta(days=5), "outside.csv", 9)
        puts = [self.put("bench_sensed", day, f"sensed-{day:%d}.csv", n) for n, day in enumerate(days)]
        command = [str(ROOT / ".venv" / "bin" / "airflow"), "backfill", "create", "--dag-id", "sense_bench_sensed",
                   "--from-date", days[0].isoformat(), "--to-date", days[-1].isoformat()]
        out = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            print(f"  backfill create failed: {out.stderr[-2000:]}", flush=True)
        rows = self.wait_terminal([k for k, _ in puts], 300)
        samples = [rows[k]["finished_at"].timestamp() - t for k, t in puts
                   if k in rows and rows[k]["status"] == "processed"]
        runs = self.api("GET", "/api/v2/dags/sense_bench_sensed/dagRuns?limit=100")["dag_runs"]
        check = {
            "runs": sorted((r["run_type"], r["data_interval_start"][:10], r["state"]) for r in runs),
            "outside_date_registered": outside in self.store.reads.find_by_raw_keys([outside]),
        }
        return samples, check

    # -- (b) ----------------------------------------------------------------------------------------------

    def upload_burst(self, feed: str, prefix: str) -> tuple[list[str], float]:
        today = datetime.now(UTC).date()
        started = time.time()
        with ThreadPoolExecutor(16) as pool:
            keys = [k for k, _ in pool.map(lambda n: self.put(feed, today, f"{prefix}-{n:05d}.csv", n),
                                           range(BURST))]
        print(f"  {BURST} uploads to raw/{feed}/ took {time.time() - started:.1f} s", flush=True)
        return keys, started

    def burst(self, round_no: int) -> tuple[float, int]:
        """BURST files at once through process_bench_burst: seconds from the first upload to the last `processed`."""
        keys, started = self.upload_burst("bench_burst", f"r{round_no}")
        rows = self.wait_terminal(keys, 1800)
        processed = [r for r in rows.values() if r["status"] == "processed"]
        last = max((r["finished_at"].timestamp() for r in processed), default=time.time())
        # Each run sweeps the feed's whole raw prefix: the next round must not list this one's files too.
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return last - started, len(processed)

    def floor_burst(self, round_no: int) -> tuple[float, int]:
        """The same burst through the no-op floor: seconds from the first upload to the end of the last run that
        consumed one of its files' events."""
        keys, started = self.upload_burst("floor_burst", f"r{round_no}")
        ended = self.floor_runs["floor_burst"].wait(keys, 1800)
        if len(ended) < len(keys):
            print(f"  only {len(ended)} of {len(keys)} S3 events reached the floor's runs: its time is for those",
                  flush=True)
        return max(ended.values(), default=time.time()) - started, len(ended)

    def baseline(self) -> tuple[float, int, int]:
        today = datetime.now(UTC).date()
        with ThreadPoolExecutor(16) as pool:
            keys = [k for k, _ in pool.map(lambda n: self.put("bench_base", today, f"p-{n:05d}.csv", n),
                                           range(BASELINE))]
        started = time.time()
        self.api("POST", "/api/v2/dags/baseline_per_file/dagRuns",
                 {"logical_date": None, "conf": {"feed": "bench_base", "keys": keys}})
        rows = self.wait_terminal(keys, 1800)
        processed = [r for r in rows.values() if r["status"] == "processed"]
        last = max((r["finished_at"].timestamp() for r in processed), default=time.time())
        return len(processed) / (last - started) * 60, len(processed), self.task_instances("baseline_per_file")[1]

    # -- (c) ----------------------------------------------------------------------------------------------

    def memory(self, size_mb: int, *, naive: bool = False, protocol: str = "ftp",
               imports_only: bool = False) -> dict[str, Any]:
        from filegate_stack.ssh_keys import ensure_ssh_keys

        root = self.stack.ctx.paths.sftp_root if protocol == "sftp" else self.stack.ctx.paths.ftp_root
        folder = root / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{'naive' if naive else 'stream'}-{size_mb}mb.bin"
        block = os.urandom(16 << 20)
        with (folder / name).open("wb") as out:
            written = 0
            while written < size_mb << 20:
                chunk = block[: min(len(block), (size_mb << 20) - written)]
                out.write(chunk)
                written += len(chunk)
        config, sftp = self.stack.ctx.config, protocol == "sftp"
        args = {"protocol": protocol, "moto": self.env["AWS_ENDPOINT_URL"], "bucket": self.bucket,
                "db": self.env["FILEGATE_DB_URL"], "directory": "/bench", "name": name, "naive": naive,
                "feed": f"bench_{protocol}", "port": self.stack.ports.sftp if sftp else self.stack.ports.ftp,
                "user": config.sftp_user if sftp else config.ftp_user,
                "password": config.sftp_password if sftp else config.ftp_password,
                "host_key": ensure_ssh_keys(self.stack.ctx.paths.ssh).host_public,
                "imports_only": imports_only}
        try:
            out = subprocess.run([sys.executable, str(MEMORY_PROBE), json.dumps(args)], env=self.env,
                                 capture_output=True, text=True, timeout=3600, check=False)
            if out.returncode:
                raise RuntimeError(f"the memory probe failed:\n{out.stderr[-4000:]}")
        finally:
            (folder / name).unlink(missing_ok=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def stop(self) -> None:
        leftovers = self.stack.stop()
        print(f"stack stopped{'; leftover pids ' + str(leftovers) if leftovers else ''}", flush=True)


def main() -> list[Figure]:
    bench = Bench()
    results: dict[str, Any] = {}
    figures: list[Figure] = []
    try:
        bench.start()
    except BaseException:
        bench.stop()
        raise
    try:
        if "a" in PARTS:
            figures.extend(part_a(bench, results))
        if "b" in PARTS:
            figures.extend(part_b(bench, results))
        if "c" in PARTS:
            figures.extend(part_c(bench, results))
    finally:
        bench.stop()
        (bench.home / "bench_ingest.json").write_text(json.dumps(results, indent=2, default=str))
    return figures


def print_phases(real: list[dict[str, float]], noop: list[dict[str, float]]) -> dict[str, list[float | None]]:
    """Median seconds of each phase of (a), Filegate next to its floor, and the difference: where the time beyond
    the floor goes, by Airflow's own task timings."""
    table: dict[str, list[float | None]] = {}
    for name in dict.fromkeys(k for turn in real for k in turn):
        mine = [t[name] for t in real if name in t]
        theirs = [t[name] for t in noop if name in t]
        table[name] = [statistics.median(mine) if mine else None, statistics.median(theirs) if theirs else None]
    print("  where the time goes (medians of whole turns, Airflow's task timings): phase, Filegate, floor, beyond",
          flush=True)
    for name, (mine, theirs) in table.items():
        beyond = f"{mine - theirs:+.2f} s" if mine is not None and theirs is not None else ""
        print(f"    {name:<34} {mine if mine is not None else float('nan'):6.2f} s "
              f"{theirs if theirs is not None else float('nan'):6.2f} s  {beyond}", flush=True)
    return table


# What a task process of process_<feed> imports beyond its DAG file, as the task runs it: the step's modules, then
# what its work imports on first use. A no-op floor task imports none of it.
TASK_IMPORTS = {
    "register_arrivals": "import filegate.ingestion.arrivals, filegate.orchestration.connections",
    "process_files": "import filegate.orchestration.file_steps, filegate.pipeline.heavy, pyarrow as pa; pa.array([1])",
    "deliver_records": "import filegate.orchestration.file_steps, filegate.pipeline.steps, pyarrow.parquet",
}
IMPORT_PROBE = """
import runpy, sys, time
import airflow.sdk.execution_time.task_runner  # what a task process has imported before it parses its DAG file
runpy.run_path(sys.argv[2], run_name="dag_parse")  # as the task process does before it runs the task
started = time.perf_counter()
exec(sys.argv[1])
print(time.perf_counter() - started)
"""


def print_task_imports(rounds: int = 3) -> dict[str, float]:
    """Seconds each task spends importing, in fresh interpreters (medians of `rounds`, the tasks taking turns):
    part of each task's `run` above that a no-op task does not pay. pyarrow imports pandas on its first array."""
    seconds: dict[str, list[float]] = {task: [] for task in TASK_IMPORTS}
    for _ in range(rounds):
        for task, statement in TASK_IMPORTS.items():
            out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, statement, str(PROCESS_DAGS)],
                                 capture_output=True, text=True, timeout=300, check=False)
            if out.returncode:  # a breakdown, not a figure: say so and keep the figures
                print(f"  the import probe of {task} failed:\n{out.stderr[-2000:]}", flush=True)
                return {}
            seconds[task].append(float(out.stdout.strip().splitlines()[-1]))
    medians = {task: statistics.median(values) for task, values in seconds.items()}
    print(f"  of which imports (fresh interpreters, medians of {rounds}): "
          + ", ".join(f"{task} {value:.2f} s" for task, value in medians.items()), flush=True)
    return medians


def tasks_of(bench: Bench, feed: str) -> int:
    return len(bench.shapes[f"process_{feed}"]["tasks"])


def part_a(bench: Bench, results: dict[str, Any]) -> list[Figure]:
    print(f"(a) latency, S3 upload → processed, against a no-op DAG of {tasks_of(bench, 'bench_evt')} tasks on "
          f"the same path; {EVENT_SAMPLES} turns each", flush=True)
    event: list[float] = []
    floor: list[float] = []
    phases: tuple[list[dict[str, float]], list[dict[str, float]]] = ([], [])
    for n in range(EVENT_SAMPLES):  # turns: a slow spell of the machine hits both alike
        turn: list[tuple[float | None, dict[str, float]]] = []
        for sample, what in ((bench.event_sample, "process_bench_evt"), (bench.floor_event_sample, "noop floor")):
            turn.append(sample(n))
            seconds, where = turn[-1]
            print(f"  turn {n + 1}, {what}: {'not done' if seconds is None else f'{seconds:.1f} s'}"
                  f"{' (' + ', '.join(f'{k} {v:.2f}' for k, v in where.items()) + ')' if where else ''}",
                  flush=True)
            time.sleep(3)
        (real, real_phases), (noop, noop_phases) = turn
        if real is not None and noop is not None:  # a turn counts only whole: its halves met the same machine
            event.append(real)
            floor.append(noop)
            phases[0].append(real_phases)
            phases[1].append(noop_phases)
    results["event_phases"] = print_phases(*phases)
    results["task_import_s"] = print_task_imports()
    sensed, check = bench.sensed_latency()
    results["event_s"], results["event_floor_s"] = event, floor
    results["sensed_median_s"] = statistics.median(sensed) if sensed else float("inf")
    print(f"  sensed (backfill of 3 dates via the scheduler): median {results['sensed_median_s']:.1f} s "
          f"(n={len(sensed)}) after the upload; scheduled runs add the wait for the interval to close "
          f"(daily: ≤ 24 h, hourly: ≤ 1 h)")
    print(f"  backfill runs: {check['runs']}; file dated outside the range registered: "
          f"{check['outside_date_registered']}", flush=True)
    if not event:
        raise RuntimeError(f"(a): no turn had both its file processed and its floor run done in {EVENT_SAMPLES}")
    value, value_note = median_of(event)
    floor_value, floor_note = median_of(floor)
    lost = (f"; {EVENT_SAMPLES - len(event)} turn(s) left out (a file not done in 300 s)"
            if len(event) < EVENT_SAMPLES else "")
    return [Figure(name="upload → processed, one small file, event-driven", value=value, unit="s",
                   goal="ratio<=", limit=GOALS["event_over_floor"], floor=floor_value,
                   floor_label=f"the same S3 → SQS → AssetWatcher path into {tasks_of(bench, 'bench_evt')} no-op "
                               "tasks",
                   note=f"Filegate {value_note} s; floor {floor_note} s{lost}")]


def part_b(bench: Bench, results: dict[str, Any]) -> list[Figure]:
    print(f"(b) {BURST} files at once, against the same burst through a no-op DAG of "
          f"{tasks_of(bench, 'bench_burst')} tasks on the same path; {BURST_ROUNDS} turns each", flush=True)
    real: list[float] = []
    floor: list[float] = []
    done: list[int] = []
    floor_through: list[int] = []
    halves = ((bench.burst, "process_bench_burst", "processed", real, done),
              (bench.floor_burst, "noop_floor_floor_burst", "files' events through", floor, floor_through))
    for round_no in range(BURST_ROUNDS):
        for measure, dag_id, what, times, counts in halves:  # the real DAG, then its floor: one turn
            seconds, count = measure(round_no)
            times.append(seconds)
            counts.append(count)
            bench.wait_idle([dag_id])
            print(f"  turn {round_no + 1}, {dag_id}: {count} {what} in {seconds:.1f} s "
                  f"({count / seconds * 60:.0f} files/min)", flush=True)
    runs, tis = bench.task_instances("process_bench_burst")
    floor_runs, floor_tis = bench.task_instances("noop_floor_floor_burst")
    print(f"  process_bench_burst: {runs} runs, {tis} task instances; floor: {floor_runs} runs, {floor_tis} task "
          f"instances (over {BURST_ROUNDS} bursts)", flush=True)
    value, value_note = median_of(real)
    floor_value, floor_note = median_of(floor)
    results.update(burst_s=real, burst_floor_s=floor, burst_processed=done, burst_runs=[runs, floor_runs],
                   burst_task_instances=[tis, floor_tis])
    lost = f"; processed {done} of {BURST} each" if min(done) < BURST else ""
    if min(floor_through) < BURST:
        lost += f"; the floor's runs got the S3 events of only {floor_through} of {BURST} files"
    batching = (f"{runs} runs/{tis} task instances against the floor's {floor_runs}/{floor_tis} over "
                f"{BURST_ROUNDS} bursts")
    figures = [
        Figure(name=f"{BURST:,} small files at once, time to all processed", value=value, unit="s",
               goal="ratio<=", limit=GOALS["burst_over_floor"], floor=floor_value,
               floor_label="the same burst, path and batching into no-op tasks",
               note=f"Filegate {value_note} s; floor {floor_note} s; {batching}{lost}"),
        Figure(name=f"{BURST:,} small files at once, files/min", value=BURST / value * 60, unit="files/min",
               goal="value>=", limit=GOALS["files_per_min"], floor=BURST / floor_value * 60,
               floor_label="the same burst into no-op tasks", note=f"uploads included{lost}"),
    ]
    if BASELINE:
        base, n_base, tis_base = bench.baseline()
        results.update(baseline_files_per_min=base, speedup=(BURST / value * 60) / base if base else 0)
        print(f"  baseline (per-file TIs): {base:.0f} files/min, {n_base} files, {tis_base} task instances; "
              f"ratio {results['speedup']:.1f} times (was a goal: ≥ {GOALS['speedup']:.0f} times)", flush=True)
    return figures


def part_c(bench: Bench, results: dict[str, Any]) -> list[Figure]:
    figures = []
    for protocol in PROTOCOLS:
        print(f"(c) peak RSS (VmHWM) of the process copying {BIG_MB} MB {protocol.upper()} → S3, against a process "
              "that only imports the same libraries", flush=True)
        floors, peaks, seconds = [], [], []
        for round_no in range(MEMORY_ROUNDS):  # turns, as for every floor
            floors.append(bench.memory(BIG_MB, protocol=protocol, imports_only=True)["peak_kb"] / 1024)
            m = bench.memory(BIG_MB, protocol=protocol)
            peaks.append(m["peak_kb"] / 1024)
            seconds.append(m["seconds"])
            print(f"  round {round_no + 1}: imports only {floors[-1]:.0f} MB; streaming pickup peak "
                  f"{peaks[-1]:.0f} MB (after imports and clients {m['before_kb'] / 1024:.0f} MB), "
                  f"{m['seconds']:.1f} s, {BIG_MB / max(m['seconds'], 1e-9):.0f} MB/s", flush=True)
        floor, floor_note = median_of(floors)
        peak, peak_note = median_of(peaks)
        results[f"{protocol}_rss_mb"], results[f"{protocol}_floor_mb"] = peak, floor
        print(f"  {peak:.0f} MB against {floor:.0f} MB: {peak - floor:.0f} MB above the floor "
              f"(goal ≤ {RSS_ABOVE_FLOOR_MB:.0f} MB)", flush=True)
        figures.append(Figure(name=f"{BIG_MB:,} MB file {protocol.upper()} → S3, peak RSS", value=peak, unit="MB",
                              goal="excess<=", limit=RSS_ABOVE_FLOOR_MB, floor=floor,
                              floor_label="a process importing the same libraries",
                              note=f"pickup {peak_note} MB; floor {floor_note} MB; copy "
                                   f"{statistics.median(seconds):.0f} s"))
        if protocol == "ftp":
            naive = bench.memory(256, naive=True)
            print(f"  for comparison, the naive whole-file copy of 256 MB: peak {naive['peak_kb'] / 1024:.0f} MB",
                  flush=True)
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "infra" / "local"))
    raise SystemExit(0 if all(f.met for f in main()) else 1)
