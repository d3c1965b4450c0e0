"""Helpers for the handler tests: a CSV with every kind of row, an in-process invoker, S3 snapshots."""

from __future__ import annotations

import importlib
import io
import json
import random
from typing import Any

import pyarrow.parquet as pq

from filegate.functions.catalog import FUNCTIONS, event_name
from filegate.functions.events import validate_event
from filegate.functions.invoke import InvokeResult

BUCKET = "filegate-local"


class Context:
    function_name = "direct"
    aws_request_id = "test-request"
    memory_limit_in_mb = 3008

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def big_csv(rows: int = 3000, seed: int = 1) -> bytes:
    """Valid rows, rule breaks (amount < 0, not a number), ragged rows and quoted newlines."""
    rnd = random.Random(seed)
    lines = ["id,amount,note"]
    for i in range(1, rows + 1):
        if i % 211 == 0:
            lines.append(f"{i},1.00")  # a field short
            continue
        amount = rnd.choice([f"{rnd.uniform(0, 500):.2f}", f"{rnd.uniform(0, 500):.2f}", "-3.50", "n/a"])
        note = rnd.choice(["plain", '"with, comma"', '"two\nlines"', '"say ""hi"""', ""])
        lines.append(f"{i},{amount},{note}")
    return ("\n".join(lines) + "\n").encode()


def in_process_invoker(calls: list[str]) -> Any:
    """Runs the registered handler in this process, with the same schema check and JSON round trip as Lambda."""

    def invoke(function: str, payload: dict[str, Any]) -> InvokeResult:
        validate_event(event_name(function), payload)
        module, _, attribute = str(FUNCTIONS[function]["handler"]).rpartition(".")
        handler = getattr(importlib.import_module(module), attribute)
        result = handler(json.loads(json.dumps(payload)), Context())
        calls.append(function)
        return InvokeResult(function, json.loads(json.dumps(result)), "in-process", "", 0.0)

    return invoke


def snapshot(s3: Any, prefix: str) -> dict[str, bytes]:
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in objects}


def parquet_rows(data: bytes) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(data)).to_pylist()


def comparable_summary(data: bytes, *, approx_floats: bool = False) -> dict[str, Any]:
    """A summary JSON without its timing; with approx_floats, mean/stddev rounded to 9 significant digits
    (split runs add partial sums in another order)."""
    summary = json.loads(data)
    summary.pop("seconds", None)
    if approx_floats:
        for stats in summary.get("columns", {}).values():
            for key in ("mean", "stddev"):
                if key in stats:
                    stats[key] = float(f"{stats[key]:.9g}")
    return summary
