"""Heavy steps on Lambda, on the local stack (moto S3 + the awslambdaric endpoint), against the in-worker path
on the same file in the same run:

- conversion rate inside the Lambda path (the engine's own seconds, as the summary records them) vs in-worker;
- invoke round-trip overhead: round trip minus the handler's Duration from its REPORT line (warm runtime);
- end to end: worker process_raw_file vs one Lambda invocation vs plan → parts (2 in parallel) → merge.

Numbers are from a shared 2-core machine; the Lambda handlers run here as local processes, so this measures
the adapter's overhead, not AWS's network or CPU share.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("FILEGATE_BENCH_LAMBDA_ROWS", "400000"))
GOAL_OVERHEAD_MS = 100.0  # warm invoke round trip beyond the handler's own duration
GOAL_RATE_RATIO = 0.8  # Lambda path conversion rate at least this share of the worker's


def make_csv(rows: int) -> bytes:
    rnd = random.Random(3)
    out = ["id,amount,note"]
    notes = ["plain", '"with, comma"', '"two\nlines"', "x" * 20, ""]
    for i in range(1, rows + 1):
        amount = f"{rnd.uniform(0, 500):.2f}" if i % 50 else "-1"
        out.append(f"{i},{amount},{notes[i % 5]}")
    return ("\n".join(out) + "\n").encode()


CONTRACT = {"name": "lines", "description": "bench", "thresholds": {"max_rejected_share": 0.5},
            "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
            "schema": {"columns": [{"name": "id", "type": "int", "nullable": False},
                                   {"name": "amount", "type": "decimal", "scale": 2, "min": 0},
                                   {"name": "note", "type": "string"}]},
            "heavy": {"size_threshold_bytes": 1}}


def duration_ms(log_tail: str) -> float:
    match = re.search(r"Duration: ([\d.]+) ms", log_tail)
    return float(match[1]) if match else float("nan")


def main() -> bool:
    import boto3

    from filegate.contracts.model import Contract
    from filegate.functions import invoke as lambda_client
    from filegate.pipeline import heavy
    from filegate.pipeline.publish import process_raw_file
    from filegate_stack.config import Ports, StackConfig
    from filegate_stack.stack import Stack

    stack = Stack(Path(tempfile.mkdtemp(prefix="filegate-bench-lambda-")), Ports.free(),
                  StackConfig(feeds=["lines"], extra_functions={}, db_url=None, airflow_db_url=None,
                              stub_api_token=None, startup_timeout=60))
    try:
        stack.start(["moto", "lambda"])
        ports = stack.ports
        creds = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{ports.moto}", **creds)
        invoke = lambda_client.boto3_invoker(endpoint_url=f"http://127.0.0.1:{ports.lambda_}", **creds)
        bucket = stack.ctx.config.bucket
        contract = Contract.model_validate(CONTRACT)
        data = make_csv(ROWS)
        mb = len(data) / 1e6
        arrived = date(2026, 11, 20)
        keys = {path: f"raw/lines/2026/11/20/{path}.csv" for path in ("worker", "single", "split")}
        for key in keys.values():
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        print(f"file: {ROWS} rows, {mb:.1f} MB (other helpers were loading the machine)")

        # Warm both sides first (imports, pyarrow kernels, each function's runtime), like a busy worker and
        # reused Lambda sandboxes: the figures below compare steady states, not cold starts.
        warm = make_csv(3000)
        s3.put_object(Bucket=bucket, Key="raw/lines/2026/11/20/warm.csv", Body=warm)
        process_raw_file(s3, bucket, contract, raw_key="raw/lines/2026/11/20/warm.csv", name="warm.csv",
                         arrived=arrived)
        os.environ[heavy.PART_BYTES_ENV] = str(len(warm) // 2)
        heavy.run_on_lambda(invoke, s3, bucket, contract,
                            {"id": 1, "raw_key": "raw/lines/2026/11/20/warm.csv", "name": "warm.csv",
                             "size_bytes": len(warm), "sha256": None, "params": {}}, arrived=arrived,
                            chosen=heavy.route(contract, name="warm.csv", size_bytes=len(warm)))

        started = time.monotonic()
        worker = process_raw_file(s3, bucket, contract, raw_key=keys["worker"], name="worker.csv", arrived=arrived)
        worker_s = time.monotonic() - started
        worker_engine_s = worker.engine.seconds

        payload = lambda_client.build_payload("process_file", bucket=bucket, raw_key=keys["single"], feed="lines",
                                      name="single.csv", arrived=arrived.isoformat(),
                                      contract=contract.model_dump(mode="json", by_alias=True))
        started = time.monotonic()
        single = invoke("filegate-process-file", payload)
        single_s = time.monotonic() - started
        summary = heavy.outcome_from_summary(s3, bucket, single.payload)
        lambda_engine_s = summary.engine.seconds

        tiny = {**payload, "raw_key": "raw/lines/2026/11/20/tiny.csv", "name": "tiny.csv"}
        s3.put_object(Bucket=bucket, Key=tiny["raw_key"], Body=make_csv(10))
        overheads = []
        for _ in range(10):
            started = time.monotonic()
            result = invoke("filegate-process-file", tiny)
            overheads.append((time.monotonic() - started) * 1000 - duration_ms(result.log_tail))
        overhead_ms = sorted(overheads)[len(overheads) // 2]

        os.environ[heavy.PART_BYTES_ENV] = str(len(data) // 4 + 1)
        os.environ[heavy.PARALLEL_ENV] = "2"
        row = {"id": 1, "raw_key": keys["split"], "name": "split.csv", "size_bytes": len(data),
               "sha256": hashlib.sha256(data).hexdigest(), "params": {}}
        started = time.monotonic()
        split = heavy.run_on_lambda(invoke, s3, bucket, contract, row, arrived=arrived,
                                    chosen=heavy.route(contract, name="split.csv", size_bytes=len(data)))
        split_s = time.monotonic() - started
        assert split.engine.rows_total == worker.engine.rows_total == summary.engine.rows_total

        rate_worker, rate_lambda = mb / worker_engine_s, mb / lambda_engine_s
        print(f"{'path':<34} {'wall s':>8} {'engine s':>9} {'MB/s (engine)':>14}")
        print(f"{'in-worker process_raw_file':<34} {worker_s:>8.2f} {worker_engine_s:>9.2f} {rate_worker:>14.1f}")
        print(f"{'Lambda: one invocation':<34} {single_s:>8.2f} {lambda_engine_s:>9.2f} {rate_lambda:>14.1f}")
        print(f"{'Lambda: plan + 4 parts (2 at once) + merge':<34} {split_s:>8.2f} "
              f"{'':>9} {mb / split_s:>14.1f} (wall)")
        print(f"conversion rate Lambda/worker: {rate_lambda / rate_worker:.2f} (goal ≥ {GOAL_RATE_RATIO})")
        print(f"end-to-end Lambda/worker: {single_s / worker_s:.2f}x; split/worker: {split_s / worker_s:.2f}x "
              f"({split.outputs['lambda']['invocations']} invocations)")
        print(f"warm invoke round-trip overhead (median of 10, beyond the handler's Duration): {overhead_ms:.1f} ms "
              f"(goal ≤ {GOAL_OVERHEAD_MS:.0f} ms)")
        return overhead_ms <= GOAL_OVERHEAD_MS and rate_lambda / rate_worker >= GOAL_RATE_RATIO
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
