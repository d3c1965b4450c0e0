"""Ingestion benchmarks on a local stack with the real Airflow scheduler, started here and stopped at the end.

(a) latency from an S3 upload to the file's `processed` status: event-driven (S3 → SQS → AssetWatcher →
    process_<feed>), goal median ≤ 15 s; and sensed (a backfill of sense_<feed> over three dates, timed from the
    upload; in production add the wait for the data interval to close, on average half the schedule period);
(b) end-to-end throughput for 1,000 small files arriving at once (event-driven, batched task instances) against
    the baseline DAG bench/dags/baseline_per_file.py (one task instance per file per step) on 100 files, in
    files/min; goals ≥ 300 files/min and ≥ 5 times the baseline;
(c) peak RSS (VmHWM) of a process streaming a file from the stack's FTP server to S3, then from its SFTP
    server (FILEGATE_BENCH_PROTOCOLS=sftp for SFTP alone), against its floor: a process that only imports the
    same libraries. The two take turns for FILEGATE_BENCH_MEMORY_ROUNDS rounds (default 3), medians; goal ≤ 100 MB
    above the floor. The file is 256 MB by default: FILEGATE_BENCH_BIG_MB=2048 for the 2 GB figure. The naive
    whole-file-in-memory copy of a 256 MB FTP file is shown beside it.

`main()` returns the figures for `make bench`'s table; (a) and (b) have no floor yet (it needs a no-op DAG
through the same AssetWatcher path) and are judged on their absolute goals.

Ports: FILEGATE_*_PORT variables if FILEGATE_AIRFLOW_PORT is set, else free ones. FILEGATE_BENCH_HOME sets the
stack's home (default: a fresh temporary folder). FILEGATE_BENCH_BURST / FILEGATE_BENCH_BASELINE change the file
counts, FILEGATE_BENCH_BIG_MB the big file's size.
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
BASELINE = int(os.environ.get("FILEGATE_BENCH_BASELINE", "100"))
BIG_MB = int(os.environ.get("FILEGATE_BENCH_BIG_MB", "256"))
MEMORY_ROUNDS = int(os.environ.get("FILEGATE_BENCH_MEMORY_ROUNDS", "3"))
RSS_ABOVE_FLOOR_MB = 100.0
EVENT_SAMPLES = 5
PARTS = os.environ.get("FILEGATE_BENCH_PARTS", "abc")  # e.g. "c" for the memory figure alone (no Airflow)
PROTOCOLS = os.environ.get("FILEGATE_BENCH_PROTOCOLS", "ftp,sftp").split(",")
GOALS = {"event_median_s": 15.0, "files_per_min": 1000.0, "speedup": 5.0}

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
DAG_FILES = [ROOT / "dags" / "process_feeds.py", ROOT / "dags" / "sense_feeds.py",
             ROOT / "bench" / "dags" / "baseline_per_file.py"]

MEMORY_PROBE = ROOT / "bench" / "pickup_memory_probe.py"


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
        self.stack = Stack(self.home / "stack", ports, StackConfig(dags_folder=dags, feeds=None, db_url=None,
                                                                   airflow_db_url=None, stub_api_token=None))
        self.env: dict[str, str] = {}
        self.token = ""

    def start(self) -> None:
        import boto3

        from filegate.status.store import StatusStore
        from filegate_stack.airflow import login_token
        from filegate_stack.samples import wait_for_dags

        started = time.monotonic()
        airflow = bool(set(PARTS) & {"a", "b"})
        self.stack.start(None if airflow else ["postgres", "moto", "ftp", "sftp"])
        self.env = {**os.environ, **self.stack.env()}
        if airflow:
            self.token = login_token(self.stack.ctx)
            wait_for_dags(self.stack, self.token, {f"process_{f}" for f in FEEDS} | {"sense_bench_sensed",
                                                                                    "baseline_per_file"})
            # These feeds are measured by other means; their event-driven DAGs must not take the files first.
            for dag_id in ("process_bench_sensed", "process_bench_base"):
                self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
        self.s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.bucket = self.env["FILEGATE_BUCKET"]
        self.store = StatusStore.connect(self.env["FILEGATE_DB_URL"])
        print(f"stack up{' with Airflow on port ' + str(self.stack.ports.airflow) if airflow else ''} in "
              f"{time.monotonic() - started:.0f} s (home {self.home})", flush=True)

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
        body = f"id,amount,label\n{n},{n % 1000}.25,file {n}\n{n + 1_000_000},1.00,second row\n".encode()
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

    def task_instances(self, dag_id: str) -> int:
        runs = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1000")["dag_runs"]
        return sum(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/taskInstances?limit=1")
                   ["total_entries"] for r in runs)

    # -- (a) ----------------------------------------------------------------------------------------------

    def event_latency(self) -> list[float]:
        today = datetime.now(UTC).date()
        samples = []
        for n in range(EVENT_SAMPLES):
            key, put_at = self.put("bench_evt", today, f"lat-{n}.csv", n)
            row = self.wait_terminal([key], 180).get(key)
            if row and row["status"] == "processed":
                samples.append(row["finished_at"].timestamp() - put_at)
            print(f"  event-driven sample {n + 1}: {samples[-1] if samples else float('nan'):.1f} s "
                  f"({row['status'] if row else 'not registered'})", flush=True)
            time.sleep(3)
        return samples

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

    def burst(self) -> tuple[float, int, int]:
        today = datetime.now(UTC).date()
        started = time.time()
        with ThreadPoolExecutor(16) as pool:
            keys = [k for k, _ in pool.map(lambda n: self.put("bench_burst", today, f"b-{n:05d}.csv", n),
                                           range(BURST))]
        uploaded = time.time() - started
        rows = self.wait_terminal(keys, 1800)
        processed = [r for r in rows.values() if r["status"] == "processed"]
        last = max((r["finished_at"].timestamp() for r in processed), default=time.time())
        print(f"  {BURST} uploads took {uploaded:.1f} s; {len(processed)} processed", flush=True)
        return len(processed) / (last - started) * 60, len(processed), self.task_instances("process_bench_burst")

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
        return len(processed) / (last - started) * 60, len(processed), self.task_instances("baseline_per_file")

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
            part_a(bench, results)
            figures.append(Figure(name="upload → processed, one small file, event-driven (median)",
                                  value=results["event_median_s"], unit="s", goal="value<=",
                                  limit=GOALS["event_median_s"], note="floor not built yet: a no-op DAG via the "
                                                                      "same AssetWatcher path"))
        if "b" in PARTS:
            part_b(bench, results)
            figures.append(Figure(name=f"{BURST:,} small files at once", value=results["files_per_min"],
                                  unit="files/min", goal="value>=", limit=GOALS["files_per_min"],
                                  note=f"{results['speedup']:.1f}x the one-task-per-file baseline; floor not "
                                       "built yet: the same burst through a no-op DAG"))
        if "c" in PARTS:
            figures.extend(part_c(bench, results))
    finally:
        bench.stop()
        (bench.home / "bench_ingest.json").write_text(json.dumps(results, indent=2, default=str))
    return figures


def part_a(bench: Bench, results: dict[str, Any]) -> None:
    print("(a) latency, S3 upload → processed", flush=True)
    event = bench.event_latency()
    sensed, check = bench.sensed_latency()
    results["event_median_s"] = statistics.median(event) if event else float("inf")
    results["sensed_median_s"] = statistics.median(sensed) if sensed else float("inf")
    print(f"  event-driven: median {results['event_median_s']:.1f} s, min {min(event, default=0):.1f}, "
          f"max {max(event, default=0):.1f} (n={len(event)}; goal ≤ {GOALS['event_median_s']:.0f} s)")
    print(f"  sensed (backfill of 3 dates via the scheduler): median {results['sensed_median_s']:.1f} s "
          f"(n={len(sensed)}) after the upload; scheduled runs add the wait for the interval to close "
          f"(daily: ≤ 24 h, hourly: ≤ 1 h)")
    print(f"  backfill runs: {check['runs']}; file dated outside the range registered: "
          f"{check['outside_date_registered']}", flush=True)


def part_b(bench: Bench, results: dict[str, Any]) -> None:
    print(f"(b) throughput, {BURST} files at once vs one task instance per file per step on {BASELINE}",
          flush=True)
    batched, n_batched, tis_batched = bench.burst()
    base, n_base, tis_base = bench.baseline()
    results.update(files_per_min=batched, baseline_files_per_min=base, speedup=batched / base if base else 0)
    print(f"  batched (process_<feed>): {batched:.0f} files/min, {n_batched} files, {tis_batched} task "
          f"instances (goal ≥ {GOALS['files_per_min']:.0f} files/min)")
    print(f"  baseline (per-file TIs): {base:.0f} files/min, {n_base} files, {tis_base} task instances")
    print(f"  ratio: {results['speedup']:.1f} times (goal ≥ {GOALS['speedup']:.0f} times)", flush=True)


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
