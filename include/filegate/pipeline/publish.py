"""Publishes an engine result to S3, Write-Audit-Publish style: Parquet reaches processed/ only when the
file passed its audit; rejects and reasons go to quarantine/. raw/ is only ever read."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from filegate.contracts.model import Contract
from filegate.pipeline.engine import EngineResult, run_engine
from filegate.storage import keys
from filegate.storage.s3 import download_with_sha256, put_json, upload_file


@dataclass
class FileOutcome:
    status: str
    reason: str | None
    engine: EngineResult
    outputs: dict[str, Any] = field(default_factory=dict)


def publish(s3: Any, bucket: str, contract: Contract, result: EngineResult, *, name: str, sha256: str,
            raw_key: str, arrived: date) -> dict[str, Any]:
    stem = keys.file_stem(name, sha256)
    outputs: dict[str, Any] = {"raw": raw_key}
    if result.rejected_file is not None:
        outputs["quarantine_rows"] = upload_file(
            s3, bucket, keys.quarantine_rows_key(contract.name, arrived, stem), result.rejected_file, "text/csv")
    if result.status == "processed":
        outputs["parquet"] = [
            upload_file(s3, bucket, keys.parquet_key(contract.name, result.partition_column, value, stem), path,
                        "application/vnd.apache.parquet")
            for value, path in sorted(result.parquet_files.items())
        ]
        summary_key = keys.summary_key(contract.name, stem)
    else:
        summary_key = keys.quarantine_reason_key(contract.name, arrived, stem)
    outputs["summary"] = summary_key
    document = {"feed": contract.name, "file": name, "sha256": sha256, "raw_key": raw_key,
                **result.summary(), "outputs": outputs}
    put_json(s3, bucket, summary_key, document)
    return outputs


def process_raw_file(s3: Any, bucket: str, contract: Contract, *, raw_key: str, name: str,
                     arrived: date, work_root: Path | None = None) -> FileOutcome:
    with tempfile.TemporaryDirectory(prefix="filegate-", dir=work_root) as tmp:
        work_dir = Path(tmp)
        local = work_dir / "raw"
        sha256, _ = download_with_sha256(s3, bucket, raw_key, local)
        result = run_engine(contract, local, arrived=arrived, work_dir=work_dir)
        outputs = publish(s3, bucket, contract, result, name=name, sha256=sha256, raw_key=raw_key,
                          arrived=arrived)
    return FileOutcome(result.status, result.reason, result, outputs)
