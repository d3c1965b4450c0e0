"""Reads of each raw object on the processing path: GetObject calls per processed file. Goal: 1.

Runs the steps of process_<feed> as its tasks do (register_arrivals → process_files → deliver_files, the same
library functions) against the local stack's moto S3 and PostgreSQL, and counts every GetObject on a raw key, for
three kinds of raw object: FILEGATE_BENCH_RAW_READS_FILES small files (default 20) written as the upload endpoint
and the FTP pickup write them (filegate.ingestion.transfer.S3StreamWriter: one PUT with a SHA-256 checksum S3
verifies), one file of FILEGATE_BENCH_RAW_READS_BIG_MB (default 8 MB) from a producer that sends a SHA-256
checksum, and a quarter as many small files from a producer that sends none (their hash can only come from reading
them: 2 reads, the goal is missed for them and says so). The count is taken in the client: a handler on boto3's
default session, so that every client made from it (the one passed to the steps and any the library makes
itself) counts. No floor: a file must be read at least once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from figures import Figure

ROOT = Path(__file__).resolve().parents[1]
FILES = int(os.environ.get("FILEGATE_BENCH_RAW_READS_FILES", "20"))
BIG_MB = int(os.environ.get("FILEGATE_BENCH_RAW_READS_BIG_MB", "8"))
FEED = "bench_reads"
WHY_TWO = ("; S3 holds no sha256 of these, so registering reads them to find duplicates by content: a producer "
           "that sends ChecksumAlgorithm=SHA256 saves that read (docs/guarantees.md)")
CONTRACT = {
    "name": FEED, "description": "raw reads benchmark", "owner": "bench",
    "source": {"kind": "s3", "pattern": "*.csv"}, "format": {"type": "csv"},
    "schema": {"columns": [{"name": "id", "type": "int", "nullable": False},
                           {"name": "amount", "type": "decimal", "scale": 2, "nullable": False},
                           {"name": "label", "type": "string"}]},
}


def csv_body(first_id: int, rows: int) -> bytes:
    lines = [f"{n},{n % 1000}.25,file row {n}" for n in range(first_id, first_id + rows)]
    return ("id,amount,label\n" + "\n".join(lines) + "\n").encode()


def count_raw_reads(counts: Counter[str]) -> None:
    import boto3

    def on_get_object(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", "").startswith("raw/"):
            counts[params["Key"]] += 1

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.s3.GetObject", on_get_object)


def main() -> list[Figure]:
    import boto3

    from filegate.contracts.model import Contract
    from filegate.ingestion.arrivals import register_arrivals
    from filegate.ingestion.transfer import S3StreamWriter
    from filegate.pipeline.steps import deliver_files, process_files
    from filegate.status.store import Actor, StatusStore
    from filegate_stack.config import Ports, StackConfig
    from filegate_stack.stack import Stack

    home = Path(tempfile.mkdtemp(prefix="filegate-bench-reads-"))
    stack = Stack(home / "stack", Ports.free(), StackConfig(feeds=[], db_url=None, airflow_db_url=None))
    counts: Counter[str] = Counter()
    try:
        stack.start(["postgres", "moto"])
        env = stack.env()
        count_raw_reads(counts)
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = env["FILEGATE_BUCKET"]
        store = StatusStore.connect(env["FILEGATE_DB_URL"])
        contract = Contract.model_validate(CONTRACT)
        folder = f"{contract.raw_prefix}{datetime.now(UTC).date():%Y/%m/%d}/"
        groups = {
            "written by Filegate (upload/FTP)": {
                f"{folder}small-{n:03d}.csv": csv_body(n * 10, 3) for n in range(FILES)},
            f"{BIG_MB} MB, producer sent SHA-256": {
                f"{folder}big-{BIG_MB}mb.csv": csv_body(10**7, (BIG_MB << 20) // 30)},
            "producer sent no checksum": {
                f"{folder}unchecked-{n:03d}.csv": csv_body(10**6 + n * 10, 3) for n in range(max(1, FILES // 4))},
        }
        written_by_filegate, checksummed, unchecked = groups.values()
        bodies = {key: body for group in groups.values() for key, body in group.items()}
        for key, body in written_by_filegate.items():
            with S3StreamWriter(s3, bucket, key, expected_size=len(body)) as writer:
                writer.write(body)
                writer.complete()
        for key, body in checksummed.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")
        for key, body in unchecked.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        actor = Actor(dag_id=f"process_{FEED}", run_id="bench_raw_reads", task_id="bench")
        queued = register_arrivals(store, s3, bucket, contract, actor, event_keys=list(bodies))
        after_register = Counter(counts)
        report = process_files(store, s3, bucket, contract, actor, file_ids=queued)
        after_process = Counter(counts)
        deliver_files(store, s3, bucket, contract, actor, report.done, None)
        rows = store.reads.find_by_raw_keys(list(bodies))
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    processed = [key for key in bodies if rows.get(key, {}).get("status") == "processed"]
    if len(processed) != len(bodies):
        raise RuntimeError(f"{len(processed)} of {len(bodies)} files processed: "
                           f"{ {k: r['status'] for k, r in rows.items()} }")
    figures = []
    for label, group in groups.items():
        keys = list(group)
        reads = [counts[k] for k in keys]
        by_step = (f"register {sum(after_register[k] for k in keys) / len(keys):.2f}, process "
                   f"{sum(after_process[k] - after_register[k] for k in keys) / len(keys):.2f}, deliver "
                   f"{sum(counts[k] - after_process[k] for k in keys) / len(keys):.2f}")
        mean = sum(reads) / len(reads)
        print(f"  {label}: GetObject per raw object {mean:.2f} (max {max(reads)}; {by_step})", flush=True)
        figures.append(Figure(name=f"GetObject per raw object, {label}", value=mean, unit="GetObject",
                              goal="value<=", limit=1, note=f"{len(keys)} file(s); per step: {by_step}"
                              + (WHY_TWO if group is unchecked else "")))
    return figures


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT / "infra" / "local"))
    raise SystemExit(0 if all(f.met for f in main()) else 1)
