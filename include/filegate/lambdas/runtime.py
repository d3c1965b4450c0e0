"""What every handler needs around the engine: event checks, the contract it was sent, /tmp space, S3 ranges.

Lambda gives a function 512 MB to 10 GB of /tmp (configurable); the space is checked before anything is
downloaded, so a file too large for the configured storage fails at once with the numbers, not half-way."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from filegate.contracts import get_contract
from filegate.contracts.model import Contract
from filegate.functions.events import validate_event

log = logging.getLogger(__name__)
TMP_DIR_ENV = "FILEGATE_LAMBDA_TMP_DIR"
# Room a conversion needs per input byte: the raw copy plus Parquet, rejects and slack for the writers.
SPACE_FACTOR_ENV = "FILEGATE_LAMBDA_SPACE_FACTOR"
DEFAULT_SPACE_FACTOR = 2.5
SPACE_MARGIN = 32 << 20
CHUNK = 8 << 20


class InsufficientTmpSpace(RuntimeError):
    """The function's /tmp cannot hold the work; raise its ephemeral storage (up to 10240 MB) or split more."""


def configure_logging() -> None:
    # The Lambda runtime installs its own handler; INFO makes the engine's progress reach CloudWatch/the tail.
    logging.getLogger().setLevel(os.environ.get("FILEGATE_LOG_LEVEL", "INFO"))


def tmp_root() -> Path:
    root = Path(os.environ.get(TMP_DIR_ENV) or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def space_factor() -> float:
    return float(os.environ.get(SPACE_FACTOR_ENV) or DEFAULT_SPACE_FACTOR)


def ensure_space(input_bytes: int, *, what: str, factor: float | None = None) -> int:
    """Fails clearly unless /tmp has room for `input_bytes` of input; returns the bytes required."""
    needed = int(input_bytes * (factor if factor is not None else space_factor())) + SPACE_MARGIN
    free = shutil.disk_usage(tmp_root()).free
    if free < needed:
        raise InsufficientTmpSpace(
            f"{what}: needs about {needed / 2**20:.0f} MiB of temporary space for {input_bytes / 2**20:.0f} MiB "
            f"of input, but {tmp_root()} has {free / 2**20:.0f} MiB free; raise the function's ephemeral "
            "storage (at most 10240 MB) or lower FILEGATE_HEAVY_PART_BYTES so that the file is split")
    return needed


def checked_event(handler: str, event: Any) -> dict[str, Any]:
    validate_event(handler, event)
    result: dict[str, Any] = event
    return result


def contract_from_event(event: dict[str, Any]) -> Contract:
    """The contract the DAG sent (so both sides run the same version); else the packaged feed of that name."""
    if "contract" not in event:
        return get_contract(event["feed"])
    contract = Contract.model_validate(event["contract"])
    if contract.name != event["feed"]:
        raise ValueError(f"the event's contract is for feed {contract.name!r}, not {event['feed']!r}")
    return contract


def arrival(event: dict[str, Any]) -> date:
    return date.fromisoformat(event["arrived"])


def object_size(s3: Any, bucket: str, key: str) -> int:
    return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])


def download_range(s3: Any, bucket: str, key: str, start: int, end: int, out: Any) -> int:
    """Streams bytes [start, end) of an object into an open binary file; returns the newline bytes seen."""
    if end <= start:
        return 0
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
    newlines = 0
    received = 0
    for chunk in iter(lambda: body.read(CHUNK), b""):
        out.write(chunk)
        newlines += chunk.count(b"\n")
        received += len(chunk)
    if received != end - start:
        raise OSError(f"s3://{bucket}/{key} bytes {start}-{end - 1}: got {received} bytes, expected {end - start}; "
                      "the object changed while it was being processed")
    return newlines


def delete_prefix(s3: Any, bucket: str, prefix: str, *, keep: str | None = None) -> int:
    """Deletes every object under `prefix`, but those under `keep` (outputs staged for the worker)."""
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if not (keep and o["Key"].startswith(keep))]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def response(status: str, reason: str | None, outputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What every handler returns: small (the invoke response is capped at 6 MB); details are in the summary."""
    return {"status": status, "reason": reason, "outputs": outputs, **extra}
