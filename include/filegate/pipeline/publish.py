"""Publishes an engine result to S3, Write-Audit-Publish style: Parquet reaches processed/ only when the
file passed its audit; rejects and reasons go to quarantine/. raw/ is only ever read.

A feed with `destinations.postgres` is loaded into its table first (staging → audit → UPSERT, one transaction,
filegate.loading.postgres): a failed audit quarantines the file before anything reaches processed/."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from filegate.contracts.model import Contract, PostgresDestination
from filegate.contracts.targets import target_dsn
from filegate.loading.postgres import LoadError, load_postgres
from filegate.pipeline.engine import EngineResult, run_engine
from filegate.pipeline.schema_check import check_schema
from filegate.storage import keys
from filegate.storage.s3 import download_with_sha256, put_json, upload_file

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


@dataclass
class FileOutcome:
    status: str
    reason: str | None
    engine: EngineResult
    outputs: dict[str, Any] = field(default_factory=dict)


def publish(s3: Any, bucket: str, contract: Contract, result: EngineResult, *, name: str, sha256: str,
            raw_key: str, arrived: date, loaded: dict[str, Any] | None = None,
            staged_prefix: str | None = None) -> dict[str, Any]:
    """Writes processed/ (a processed result) and quarantine/; returns the outputs, as the summary lists them.

    With `staged_prefix` (a processed result whose Postgres load runs later, on the worker:
    filegate.pipeline.staged_publish), the Parquet and the summary are written under that prefix instead, each at
    staged_key(prefix, <its processed/ key>), and the outputs say so (`staged`): nothing reaches processed/."""
    stem = keys.file_stem(name, sha256)
    outputs: dict[str, Any] = {"raw": raw_key}
    staging = staged_prefix if result.status == "processed" else None

    def at(key: str) -> str:
        return keys.staged_key(staging, key) if staging else key

    if result.rejected_file is not None:
        outputs["quarantine_rows"] = upload_file(
            s3, bucket, keys.quarantine_rows_key(contract.name, arrived, stem), result.rejected_file, "text/csv")
    if result.status == "processed":
        outputs["parquet"] = []
        for value, path in sorted(result.parquet_files.items()):
            key = keys.parquet_key(contract.name, result.partition_column, value, stem)
            upload_file(s3, bucket, at(key), path, PARQUET_CONTENT_TYPE)
            outputs["parquet"].append(key)
        summary_key = keys.summary_key(contract.name, stem)
    else:
        summary_key = keys.quarantine_reason_key(contract.name, arrived, stem)
    outputs["summary"] = summary_key
    if loaded:
        outputs["postgres"] = loaded
    document = {"feed": contract.name, "file": name, "sha256": sha256, "raw_key": raw_key,
                **result.summary(), "outputs": outputs}
    put_json(s3, bucket, at(summary_key), document)
    if staging:
        return {**outputs, "staged": staging}
    return outputs


def audit_failure(dest: PostgresDestination, error: LoadError) -> str:
    """The reason a file is quarantined with when its Postgres audit fails, wherever the load ran."""
    return f"Postgres audit of {dest.db_schema}.{dest.table} failed, nothing published: {error}"


def load_destinations(contract: Contract, result: EngineResult, *, sha256: str,
                      db_url: str | None = None) -> dict[str, Any] | None:
    """The Postgres load of a processed file. A failed audit turns the result into `quarantined` (nothing is
    published); a database that cannot be reached raises, so the step retries or marks the file failed."""
    dest = contract.destinations.postgres
    if dest is None or result.status != "processed":
        return None
    try:
        report = load_postgres(db_url or target_dsn(dest), contract, result.parquet_files.values(), sha256=sha256,
                               expected_rows=result.rows_output)
    except LoadError as exc:
        result.status = "quarantined"
        result.reason = audit_failure(dest, exc)
        return None
    return {"table": report.table, "rows": report.published}


def process_raw_file(s3: Any, bucket: str, contract: Contract, *, raw_key: str, name: str,
                     arrived: date, work_root: Path | None = None, db_url: str | None = None,
                     registered_sha256: str | None = None,
                     schema_baseline: dict[str, Any] | None = None,
                     staged_prefix: str | None = None) -> FileOutcome:
    """Downloads the raw object once, hashing it on the way; with `registered_sha256` other content raises
    ObjectChanged before anything is parsed or published. `schema_baseline` is the feed's current schema version
    (filegate.pipeline.schema_check): a drifted file under `schema_drift: freeze` is quarantined unpublished.
    With `staged_prefix` (a Lambda function, which has no database) the Postgres load is left to the worker:
    a processed file's outputs wait under that prefix (see publish)."""
    with tempfile.TemporaryDirectory(prefix="filegate-", dir=work_root) as tmp:
        work_dir = Path(tmp)
        local = work_dir / "raw"
        sha256, _ = download_with_sha256(s3, bucket, raw_key, local, expected_sha256=registered_sha256)
        result = run_engine(contract, local, arrived=arrived, work_dir=work_dir, name=name)
        check_schema(contract, result, schema_baseline)
        loaded = None if staged_prefix else load_destinations(contract, result, sha256=sha256, db_url=db_url)
        outputs = publish(s3, bucket, contract, result, name=name, sha256=sha256, raw_key=raw_key,
                          arrived=arrived, loaded=loaded, staged_prefix=staged_prefix)
    return FileOutcome(result.status, result.reason, result, outputs)
