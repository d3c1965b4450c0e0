"""A large CSV routed to Lambda in parts against the same file through the in-worker engine, on the local stack
(moto S3 and the stack's Lambda endpoint: the real AWS Lambda runtime interface client, awslambdaric, running
Filegate's handlers; not moto's echo Lambda).

- figure: wall time of heavy.run_on_lambda over the file, split into FILEGATE_BENCH_LAMBDA_PARTS byte ranges
  (default 4): filegate-plan-parts → filegate-convert-part per range (FILEGATE_HEAVY_PARALLEL at once, default
  8) → filegate-merge-parts; floor: process_raw_file, the worker's own path (download, engine, publish) on the same
  file. The two take turns for FILEGATE_BENCH_LAMBDA_ROUNDS rounds (default 2), medians; goal: faster than the
  worker (≤ 1x). After each round the two results must be equal: row counts, the Parquet's schema and content
  hash (every row, as CSV text, so row groups and batch sizes do not matter), the quarantined rows' bytes; the
  benchmark fails if they are not.
- the engine's conversion rate inside the Lambda parts (their own engine seconds) against the worker's;
- a warm invoke's round trip beyond the handler's own Duration (its REPORT line), median of 10.

The file is FILEGATE_BENCH_LAMBDA_MB megabytes (default 1024). Where the time goes is printed: every
invocation's Duration and round trip, each part's engine seconds, and the worker's engine seconds against the
download and publish around them. The stack's endpoint keeps one warm sandbox per function, which serves its
invocations one at a time (as one Lambda execution environment does), so the parts of one file run one after
another here, where AWS would run them side by side.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from figures import Figure, median_of

ROOT = Path(__file__).resolve().parents[1]
SIZE_MB = int(os.environ.get("FILEGATE_BENCH_LAMBDA_MB", "1024"))
PARTS = int(os.environ.get("FILEGATE_BENCH_LAMBDA_PARTS", "4"))
ROUNDS = int(os.environ.get("FILEGATE_BENCH_LAMBDA_ROUNDS", "2"))
GOAL_OVERHEAD_MS = 100.0  # warm invoke round trip beyond the handler's own duration
GOAL_RATE_RATIO = 0.8  # conversion rate inside the Lambda parts at least this share of the worker's
GOAL_SPLIT_OVER_WORKER = 1.0  # faster than in-worker
ARRIVED = date(2026, 11, 20)

CONTRACT = {"name": "lines", "description": "bench", "thresholds": {"max_rejected_share": 0.5},
            "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
            "schema": {"columns": [{"name": "id", "type": "int", "nullable": False},
                                   {"name": "amount", "type": "decimal", "scale": 2, "min": 0},
                                   {"name": "note", "type": "string"}]},
            "heavy": {"size_threshold_bytes": 1}}


def csv_rows(first: int, rows: int) -> bytes:
    """Rows with quoted commas and newlines inside quotes (a part boundary must not cut them) and every 50th
    amount below the contract's minimum (rejected rows, renumbered by the merge)."""
    rnd = random.Random(first)
    notes = ["plain", '"with, comma"', '"two\nlines"', "x" * 20, ""]
    out = []
    for i in range(first, first + rows):
        amount = f"{rnd.uniform(0, 500):.2f}" if i % 50 else "-1"
        out.append(f"{i},{amount},{notes[i % 5]}\n")
    return "".join(out).encode()


def write_csv(path: Path, size_bytes: int) -> str:
    """A CSV of about `size_bytes`: 10 blocks of 100,000 rows, repeated (making every row afresh in Python takes
    minutes per GB on a busy machine); returns its sha256."""
    header = b"id,amount,note\n"
    digest = hashlib.sha256(header)
    blocks = [csv_rows(1 + n * 100_000, 100_000) for n in range(10)]
    with path.open("wb") as out:
        out.write(header)
        n = 0
        while out.tell() < size_bytes:
            out.write(blocks[n % len(blocks)])
            digest.update(blocks[n % len(blocks)])
            n += 1
    return digest.hexdigest()


def duration_ms(log_tail: str) -> float:
    match = re.search(r"Duration: ([\d.]+) ms", log_tail)
    return float(match[1]) if match else float("nan")


@dataclass(frozen=True)
class Call:
    function: str
    started: float  # time.monotonic() in the caller
    ended: float
    duration_ms: float  # the handler's own, from its REPORT line
    engine_s: float | None  # a convert_part's engine seconds


class RecordingInvoker:
    """The boto3 invoker, keeping each call's round trip and the handler's own duration."""

    def __init__(self, invoke: Any) -> None:
        self.invoke = invoke
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    def __call__(self, function: str, payload: dict[str, Any]) -> Any:
        started = time.monotonic()
        result = self.invoke(function, payload)
        engine = result.payload.get("seconds") if function.endswith("convert-part") else None
        with self.lock:
            self.calls.append(Call(function, started, time.monotonic(), duration_ms(result.log_tail), engine))
        return result


def where_the_time_goes(calls: list[Call], started: float, ended: float) -> None:
    """Each invocation's own Duration and when it ran, the phases, and what the parts would take side by side."""
    for call in calls:
        engine = f", engine {call.engine_s:.1f} s" if call.engine_s is not None else ""
        print(f"  {call.function:<22} {call.started - started:6.1f} s → {call.ended - started:6.1f} s: Duration "
              f"{call.duration_ms / 1000:6.1f} s{engine}", flush=True)
    parts = [c for c in calls if c.engine_s is not None]
    if not parts:
        return
    span = max(c.ended for c in parts) - min(c.started for c in parts)
    own = sum(c.duration_ms for c in parts) / 1000
    longest = max(c.duration_ms for c in parts) / 1000
    others = sum(c.ended - c.started for c in calls if c.engine_s is None)
    engines = sum(c.engine_s or 0.0 for c in parts)
    print(f"  parts: {span:.1f} s for {len(parts)} invocations whose own Durations add up to {own:.1f} s (the "
          f"stack's one sandbox per function runs them one at a time); engines {engines:.1f} s; plan and merge "
          f"{others:.1f} s; the rest (events, summary) {ended - started - span - others:.1f} s",
          flush=True)
    print(f"  side by side (as on AWS, one environment per part) the parts would take about the longest one, "
          f"{longest:.1f} s: about {ended - started - span + longest:.1f} s in all (an estimate, not measured)",
          flush=True)


def content_of(s3: Any, bucket: str, outputs: dict[str, Any], work: Path) -> dict[str, Any]:
    """What must be equal between the two paths: rows, schema and a content hash of the Parquet (each row as
    CSV text, so row groups and batch boundaries do not matter), and the quarantined rows' bytes."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rows, schemas, digest = 0, [], hashlib.sha256()
    for n, key in enumerate(outputs.get("parquet") or []):
        local = work / f"{n}.parquet"
        s3.download_file(bucket, key, str(local))
        parquet = pq.ParquetFile(local)
        schemas.append(str(parquet.schema_arrow.remove_metadata()))
        for batch in parquet.iter_batches(batch_size=1 << 20):
            text = io.BytesIO()
            pa_csv.write_csv(batch, text, pa_csv.WriteOptions(include_header=False))
            digest.update(text.getvalue())
            rows += batch.num_rows
        local.unlink()
    quarantined = hashlib.sha256()
    if outputs.get("quarantine_rows"):
        body = s3.get_object(Bucket=bucket, Key=outputs["quarantine_rows"])["Body"]
        for chunk in iter(lambda: body.read(8 << 20), b""):
            quarantined.update(chunk)
    return {"parquet_rows": rows, "schemas": schemas, "parquet_sha256": digest.hexdigest(),
            "quarantine_sha256": quarantined.hexdigest() if outputs.get("quarantine_rows") else None}


def assert_equal(worker: Any, split: Any, worker_content: dict[str, Any], split_content: dict[str, Any]) -> None:
    """Fails the benchmark loudly: a faster path with other results is no figure at all."""
    counts = {path: (o.status, o.engine.rows_total, o.engine.rows_valid, o.engine.rows_rejected)
              for path, o in (("in-worker", worker), ("Lambda in parts", split))}
    if len(set(counts.values())) != 1 or worker_content != split_content:
        raise AssertionError(f"the Lambda parts' results differ from the in-worker run: (status, rows total, valid, "
                             f"rejected) {counts}; contents in-worker {worker_content}, in parts {split_content}")


def main() -> list[Figure]:
    import boto3

    from filegate.contracts.model import Contract
    from filegate.functions import invoke as lambda_client
    from filegate.pipeline import heavy
    from filegate.pipeline.publish import process_raw_file
    from filegate_stack.config import Ports, StackConfig
    from filegate_stack.stack import Stack

    home = Path(tempfile.mkdtemp(prefix="filegate-bench-lambda-"))
    stack = Stack(home / "stack", Ports.free(),
                  StackConfig(feeds=["lines"], extra_functions={}, db_url=None, airflow_db_url=None,
                              stub_api_token=None, startup_timeout=60))
    try:
        stack.start(["moto", "lambda"])
        ports = stack.ports
        creds = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{ports.moto}", **creds)
        invoke = RecordingInvoker(lambda_client.boto3_invoker(endpoint_url=f"http://127.0.0.1:{ports.lambda_}",
                                                              **creds))
        bucket = stack.ctx.config.bucket
        contract = Contract.model_validate(CONTRACT)
        source = home / "big.csv"
        started = time.monotonic()
        sha256 = write_csv(source, SIZE_MB << 20)
        size = source.stat().st_size
        keys = {path: f"raw/lines/2026/11/20/{path}.csv" for path in ("worker", "split")}
        # Uploaded twice, not copied: moto gives a copy of a multipart object a whole-object checksum that
        # botocore's GetObject then rejects (FlexibleChecksumError).
        for key in keys.values():
            s3.upload_file(str(source), bucket, key)
        source.unlink()
        print(f"file: {size / 1e6:,.0f} MB, written and uploaded in {time.monotonic() - started:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)

        # Warm both sides first (imports, pyarrow kernels, each function's runtime), like a busy worker and
        # reused Lambda sandboxes: the figures compare steady states, not cold starts.
        warm_key = "raw/lines/2026/11/20/warm.csv"
        warm = b"id,amount,note\n" + csv_rows(1, 3000)
        s3.put_object(Bucket=bucket, Key=warm_key, Body=warm)
        process_raw_file(s3, bucket, contract, raw_key=warm_key, name="warm.csv", arrived=ARRIVED)
        os.environ[heavy.PART_BYTES_ENV] = str(len(warm) // 2)
        heavy.run_on_lambda(invoke, s3, bucket, contract,
                            {"id": 1, "raw_key": warm_key, "name": "warm.csv", "size_bytes": len(warm),
                             "sha256": None, "params": {}}, arrived=ARRIVED,
                            chosen=heavy.route(contract, name="warm.csv", size_bytes=len(warm)))

        os.environ[heavy.PART_BYTES_ENV] = str(size // PARTS + 1)
        row = {"id": 1, "raw_key": keys["split"], "name": "split.csv", "size_bytes": size, "sha256": sha256,
               "params": {}}
        worker_s, worker_engine_s, split_s, part_engine_s = [], [], [], []
        for round_no in range(ROUNDS):  # turns: a slow spell of the machine hits both alike
            started = time.monotonic()
            worker = process_raw_file(s3, bucket, contract, raw_key=keys["worker"], name="worker.csv",
                                      arrived=ARRIVED, registered_sha256=sha256)
            worker_s.append(time.monotonic() - started)
            worker_engine_s.append(worker.engine.seconds)
            print(f"round {round_no + 1}, in-worker: {worker_s[-1]:.1f} s (engine {worker.engine.seconds:.1f} s, "
                  f"download and publish {worker_s[-1] - worker.engine.seconds:.1f} s), {worker.engine.rows_total:,} "
                  f"rows", flush=True)

            invoke.calls.clear()
            started = time.monotonic()
            split = heavy.run_on_lambda(invoke, s3, bucket, contract, row, arrived=ARRIVED,
                                        chosen=heavy.route(contract, name="split.csv", size_bytes=size))
            ended = time.monotonic()
            split_s.append(ended - started)
            part_engine_s.append(sum(c.engine_s or 0.0 for c in invoke.calls))
            print(f"round {round_no + 1}, Lambda in parts: {split_s[-1]:.1f} s, {len(invoke.calls)} invocations",
                  flush=True)
            where_the_time_goes(invoke.calls, started, ended)

            with tempfile.TemporaryDirectory(prefix="compare-", dir=home) as tmp:
                worker_content = content_of(s3, bucket, worker.outputs, Path(tmp))
                split_content = content_of(s3, bucket, split.outputs, Path(tmp))
            assert_equal(worker, split, worker_content, split_content)
            print(f"  results equal: {split_content['parquet_rows']:,} Parquet rows, content sha256 "
                  f"{split_content['parquet_sha256'][:16]}…, {split.engine.rows_rejected:,} rows quarantined "
                  f"(sha256 {str(split_content['quarantine_sha256'])[:16]}…)", flush=True)

        tiny_key = "raw/lines/2026/11/20/tiny.csv"
        s3.put_object(Bucket=bucket, Key=tiny_key, Body=b"id,amount,note\n" + csv_rows(1, 10))
        tiny = lambda_client.build_payload("process_file", bucket=bucket, raw_key=tiny_key, feed="lines",
                                           name="tiny.csv", arrived=ARRIVED.isoformat(),
                                           contract=contract.model_dump(mode="json", by_alias=True))
        overheads = []
        for _ in range(10):
            started = time.monotonic()
            result = invoke.invoke("filegate-process-file", tiny)
            overheads.append((time.monotonic() - started) * 1000 - duration_ms(result.log_tail))
        overhead_ms = statistics.median(overheads)
    finally:
        stack.stop()

    mb = size / 1e6
    split_value, split_note = median_of(split_s)
    worker_value, worker_note = median_of(worker_s)
    rate_parts, rate_note = median_of([mb / s for s in part_engine_s])
    rate_worker, rate_worker_note = median_of([mb / s for s in worker_engine_s])
    print(f"warm invoke round trip beyond the handler's Duration: median {overhead_ms:.1f} ms of 10")
    return [
        Figure(name=f"{mb:,.0f} MB CSV on Lambda in {PARTS} parts (plan, parts, merge)", value=split_value,
               unit="s", goal="ratio<=", limit=GOAL_SPLIT_OVER_WORKER, floor=worker_value,
               floor_label="the same file through the in-worker engine",
               note=f"parts {split_note} s; in-worker {worker_note} s; results equal (rows, Parquet content hash, "
                    "quarantined rows)"),
        Figure(name=f"engine rate inside the Lambda parts, {mb:,.0f} MB", value=rate_parts, unit="MB/s",
               goal="ratio>=", limit=GOAL_RATE_RATIO, floor=rate_worker, floor_label="the engine in the worker",
               note=f"parts {rate_note} MB/s; worker {rate_worker_note} MB/s"),
        Figure(name="warm Lambda invoke, round trip beyond the handler", value=overhead_ms, unit="ms",
               goal="value<=", limit=GOAL_OVERHEAD_MS, note="median of 10 invocations of a 10-row file"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "infra" / "local"))
    raise SystemExit(0 if all(f.met for f in main()) else 1)
