"""Heavy steps on AWS Lambda: which files go there, which functions run them, and how results come back.

No Airflow here: the caller passes an `Invoker` (filegate.functions.invoke), which checks every payload
against its function's schema; payloads carry S3 references and the contract, never file bodies.

A file over the feed's `heavy.size_threshold_bytes`, or of a format in `heavy.always_formats` (PDFs always:
the workers have no PDF engine), runs on Lambda:
- PDFs: filegate-split-pdf with the page map given with the upload;
- other files up to FILEGATE_HEAVY_PART_BYTES: filegate-process-file, one invocation, the worker's own code;
- larger files: filegate-plan-parts → filegate-convert-part per byte range (in parallel) →
  filegate-merge-parts, so that no invocation has to outlast Lambda's 15 minutes.
The functions have no database: for a feed with `destinations.postgres` they stage a processed file's outputs,
and the worker loads, audits and publishes them (filegate.pipeline.staged_publish) before the file's status is
recorded.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

from filegate.contracts.model import Contract
from filegate.functions.catalog import (
    CONVERT_PART,
    MERGE_PARTS,
    PLAN_PARTS,
    PROCESS_FILE,
    SPLIT_PDF,
    event_name,
)
from filegate.functions.invoke import Invoker, InvokeResult, build_payload
from filegate.pipeline.engine import EngineResult
from filegate.pipeline.parts import contract_blocks_split
from filegate.pipeline.publish import FileOutcome, process_raw_file
from filegate.pipeline.staged_publish import finish_staged, is_staged
from filegate.storage import keys
from filegate.storage import metadata as s3_metadata
from filegate.storage.s3 import ObjectChanged

log = logging.getLogger(__name__)
PART_BYTES_ENV = "FILEGATE_HEAVY_PART_BYTES"
# At the engine's measured rate on these machines (see `make bench`), 1 GiB converts in a few minutes:
# far inside 15 minutes even on a slower Lambda CPU share.
DEFAULT_PART_BYTES = 1 << 30
PARALLEL_ENV = "FILEGATE_HEAVY_PARALLEL"
DEFAULT_PARALLEL = 8
LAMBDA_ONLY_FORMATS = frozenset({"pdf"})  # the workers' engine cannot read these


# ---- routing -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    to_lambda: bool
    function: str | None
    reason: str



def file_format(contract: Contract, name: str) -> str:
    declared = contract.format.type
    if declared != "auto":
        return declared
    return posixpath.splitext(name)[1].lstrip(".").lower() or "auto"


def route(contract: Contract, *, name: str, size_bytes: int | None) -> Route:
    heavy = contract.heavy
    fmt = file_format(contract, name)
    if fmt in LAMBDA_ONLY_FORMATS:
        return Route(True, SPLIT_PDF if heavy.function == PROCESS_FILE else heavy.function,
                     f"{fmt} files are processed on Lambda only")
    if fmt in heavy.always_formats:
        return Route(True, heavy.function, f"format {fmt} always goes to Lambda")
    threshold = heavy.size_threshold_bytes
    if threshold is not None and size_bytes is not None and size_bytes > threshold:
        return Route(True, heavy.function, f"{size_bytes} bytes is over the feed's threshold of {threshold}")
    return Route(False, None, "processed in the worker")


def part_bytes() -> int:
    return int(os.environ.get(PART_BYTES_ENV) or DEFAULT_PART_BYTES)


def file_params(s3: Any, bucket: str, row: dict[str, Any]) -> dict[str, Any]:
    """Parameters given with the upload: the status store's copy, else the raw object's S3 metadata."""
    if row.get("params"):
        params: dict[str, Any] = row["params"]
        return params
    head = s3.head_object(Bucket=bucket, Key=row["raw_key"])
    return s3_metadata.params_of(head.get("Metadata") or {}, where=row["raw_key"])


# ---- results -----------------------------------------------------------------------------------------------

def _read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return document


def outcome_from_summary(s3: Any, bucket: str, result: dict[str, Any]) -> FileOutcome:
    """Rebuilds the worker's FileOutcome from a handler's answer and the summary JSON it published, so the
    status store records exactly what the in-worker path would (quality_result, outputs, status)."""
    outputs = dict(result["outputs"])
    summary = _read_json(s3, bucket, outputs["summary"])
    if "pages_total" in summary or "page_map" in summary:  # a PDF: pages stand for rows
        parts = summary.get("parts") or {}
        pages = summary.get("pages_total", 0)
        engine = EngineResult(result["status"], result["reason"], rows_total=pages,
                              rows_valid=pages if result["status"] == "processed" else 0,
                              column_stats={"pages_total": pages,
                                            "parts": {n: p["page_count"] for n, p in parts.items()}},
                              schema={"format": "pdf"})
    else:
        rows = summary.get("rows") or {}
        engine = EngineResult(result["status"], result["reason"], rows_total=rows.get("total", 0),
                              rows_valid=rows.get("valid", 0), rows_rejected=rows.get("rejected", 0),
                              issues=summary.get("issues") or [], column_stats=summary.get("columns") or {},
                              schema=summary.get("schema") or {}, seconds=summary.get("seconds") or 0.0,
                              file_schema=summary.get("file_schema") or [],
                              schema_drift=summary.get("schema_drift"))
    return FileOutcome(result["status"], result["reason"], engine, outputs)


def settle(s3: Any, bucket: str, contract: Contract, result: dict[str, Any], *, arrived: date) -> FileOutcome:
    """The FileOutcome of a handler's answer; outputs it staged for a Postgres feed are loaded, audited and
    published here first (filegate.pipeline.staged_publish), so the file ends as it would in-worker."""
    if is_staged(result):
        result = finish_staged(s3, bucket, contract, result, arrived=arrived)
    return outcome_from_summary(s3, bucket, result)


def staged_publish_prefix(contract: Contract, sha256: str | None) -> str | None:
    """Where process_file/merge_parts leave a Postgres feed's outputs for the worker's load; None otherwise."""
    if contract.destinations.postgres is None:
        return None
    return keys.staged_publish_prefix(contract.name, sha256 or uuid.uuid4().hex)


# ---- running ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeavyFile:
    file_id: int | None
    raw_key: str
    name: str
    arrived: date
    size_bytes: int | None
    sha256: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any], arrived: date) -> HeavyFile:
        return cls(row.get("id"), row["raw_key"], row["name"], arrived, row.get("size_bytes"), row.get("sha256"))


def _contract_json(contract: Contract) -> dict[str, Any]:
    return contract.model_dump(mode="json", by_alias=True)


def run_pdf(invoker: Invoker, s3: Any, bucket: str, contract: Contract, file: HeavyFile, function: str,
            params: dict[str, Any]) -> tuple[FileOutcome, list[InvokeResult]]:
    # Without a page map the handler quarantines the file with that reason: nothing is guessed.
    payload = build_payload(
        event_name(function), bucket=bucket, raw_key=file.raw_key, feed=contract.name, name=file.name,
        arrived=file.arrived.isoformat(), contract=_contract_json(contract), file_id=file.file_id,
        page_map=params.get("page_map"))
    result = invoker(function, payload)
    return outcome_from_summary(s3, bucket, result.payload), [result]


def run_split(invoker: Invoker, s3: Any, bucket: str, contract: Contract, file: HeavyFile,
              schema_baseline: dict[str, Any] | None = None) -> tuple[FileOutcome, list[InvokeResult]]:
    common = {"bucket": bucket, "raw_key": file.raw_key, "feed": contract.name, "contract": _contract_json(contract),
              "file_id": file.file_id}
    plan = invoker(PLAN_PARTS, build_payload(event_name(PLAN_PARTS), **common, part_bytes=part_bytes()))
    ranges = plan.payload["parts"]
    log.info("%s: %s", file.name, plan.payload["reason"])
    if file.sha256 and plan.payload["sha256"] != file.sha256:
        raise ObjectChanged(bucket, file.raw_key, file.sha256, plan.payload["sha256"], file.size_bytes or 0)
    staged_prefix = staged_publish_prefix(contract, plan.payload["sha256"])
    if len(ranges) == 1:
        single = invoker(PROCESS_FILE, build_payload(event_name(PROCESS_FILE), **common, name=file.name,
                                                     arrived=file.arrived.isoformat(),
                                                     schema_baseline=schema_baseline,
                                                     staged_publish_prefix=staged_prefix))
        return settle(s3, bucket, contract, single.payload, arrived=file.arrived), [plan, single]
    work_prefix = keys.staging_prefix(contract.name, plan.payload["sha256"])
    per_part = {**common, "name": file.name, "arrived": file.arrived.isoformat(), "work_prefix": work_prefix,
                "header_end": plan.payload["header_end"]}
    payloads = [build_payload(event_name(CONVERT_PART), **per_part, part=r) for r in ranges]
    workers = max(1, min(int(os.environ.get(PARALLEL_ENV) or DEFAULT_PARALLEL), len(payloads)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda-part") as pool:
        futures = [pool.submit(invoker, CONVERT_PART, p) for p in payloads]
        errors = [f.exception() for f in futures]
    failed = [e for e in errors if e is not None]
    if failed:
        raise failed[0]
    parts = [f.result() for f in futures]
    merged = invoker(MERGE_PARTS, build_payload(event_name(MERGE_PARTS), **per_part_without(per_part, "header_end"),
                                                sha256=plan.payload["sha256"], parts=len(parts),
                                                schema_baseline=schema_baseline,
                                                staged_publish_prefix=staged_prefix))
    return settle(s3, bucket, contract, merged.payload, arrived=file.arrived), [plan, *parts, merged]


def per_part_without(fields: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in drop}


# A schema version rides in Lambda events (at most 256 KiB): a very wide feed's values profile stays behind (a
# rename is then recognised by its name only), and a version too wide even without it is not sent at all.
BASELINE_PROFILE_MAX_BYTES = 48 << 10
BASELINE_MAX_BYTES = 160 << 10


def baseline_for_event(schema_baseline: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if schema_baseline is None or len(json.dumps(schema_baseline)) <= BASELINE_PROFILE_MAX_BYTES:
        return schema_baseline
    lean = {k: v for k, v in schema_baseline.items() if k != "profile"}
    if len(json.dumps(lean)) <= BASELINE_MAX_BYTES:
        return lean
    log.warning("%s: the feed's schema version is too wide for a Lambda event; its drift is not checked", name)
    return None


def run_on_lambda(invoker: Invoker, s3: Any, bucket: str, contract: Contract, row: dict[str, Any], *,
                  arrived: date, chosen: Route, schema_baseline: dict[str, Any] | None = None) -> FileOutcome:
    file = HeavyFile.from_row(row, arrived)
    schema_baseline = baseline_for_event(schema_baseline, file.name)
    function = chosen.function or PROCESS_FILE
    started = time.monotonic()
    kind = event_name(function)
    if kind == "split_pdf":
        outcome, calls = run_pdf(invoker, s3, bucket, contract, file, function, file_params(s3, bucket, row))
    elif kind == "process_file" and (file.size_bytes or 0) > part_bytes() and contract_blocks_split(contract) is None:
        outcome, calls = run_split(invoker, s3, bucket, contract, file, schema_baseline)
    else:
        if (file.size_bytes or 0) > part_bytes():
            log.warning("%s: %s bytes in one invocation: %s", file.name, file.size_bytes,
                        contract_blocks_split(contract))
        one_file = kind == "process_file"
        payload = build_payload(kind, bucket=bucket, raw_key=file.raw_key, feed=contract.name, name=file.name,
                                arrived=file.arrived.isoformat(), contract=_contract_json(contract),
                                file_id=file.file_id, sha256=file.sha256 if one_file else None,
                                schema_baseline=schema_baseline if one_file else None,
                                staged_publish_prefix=staged_publish_prefix(contract, file.sha256)
                                if one_file else None)
        result = invoker(function, payload)
        outcome, calls = settle(s3, bucket, contract, result.payload, arrived=file.arrived), [result]
    outcome.outputs["lambda"] = {"route": chosen.reason, "invocations": len(calls),
                                 "functions": sorted({c.function for c in calls}),
                                 "request_ids": [c.request_id for c in calls][:20],
                                 "seconds": round(time.monotonic() - started, 3)}
    log.info("%s on Lambda (%s): %s in %d invocation(s), %.2f s", file.name, chosen.reason, outcome.status,
             len(calls), time.monotonic() - started)
    return outcome


def process_routed(s3: Any, bucket: str, contract: Contract, row: dict[str, Any], *, arrived: date,
                   invoker: Invoker | None, schema_baseline: dict[str, Any] | None = None) -> FileOutcome:
    """One claimed file, in the worker or on Lambda as the contract's heavy settings say. `schema_baseline`: the
    feed's current schema version, for the drift check (filegate.pipeline.schema_check), which runs before
    publishing wherever the file is processed."""
    chosen = route(contract, name=row["name"], size_bytes=row.get("size_bytes"))
    if chosen.to_lambda and invoker is not None:
        return run_on_lambda(invoker, s3, bucket, contract, row, arrived=arrived, chosen=chosen,
                             schema_baseline=schema_baseline)
    if chosen.to_lambda:
        if file_format(contract, row["name"]) in LAMBDA_ONLY_FORMATS:
            raise RuntimeError(f"{row['name']}: {chosen.reason}, but no Lambda invoker is configured here")
        log.warning("%s: %s, but no Lambda invoker is configured: processing in the worker", row["name"],
                    chosen.reason)
    return process_raw_file(s3, bucket, contract, raw_key=row["raw_key"], name=row["name"], arrived=arrived,
                            registered_sha256=row.get("sha256"), schema_baseline=schema_baseline)
