"""The worker's half of a file a Lambda function processed for a feed with `destinations.postgres`.

The functions have no database (they run outside the VPC), so for such a feed they stop before the load:
the Parquet and the summary wait under a staging prefix (publish(staged_prefix=…)), the rejected rows are already
in quarantine/, and the answer says `outputs.staged`. Here, on the worker, Write-Audit-Publish ends as in-worker:

1. the staged Parquet is downloaded once and loaded (filegate.loading.postgres: staging table, audit, UPSERT on
   the natural key, one transaction);
2. audit passed: each Parquet is copied server-side to its processed/ key, then the summary (with
   outputs.postgres) is written; audit failed: the file is quarantined with the reason, nothing in processed/;
3. the staged objects are deleted.

The processed/ and quarantine/ objects are the ones the in-worker path writes for the same file. A retry (of the
task, or of this step after a crash) stages again over the same keys and loads again: the UPSERT replaces the
file's rows, so no row is added twice, and the summary is written last, as in-worker.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from filegate.contracts.model import Contract
from filegate.contracts.targets import target_dsn
from filegate.loading.postgres import LoadError, load_postgres
from filegate.pipeline.publish import PARQUET_CONTENT_TYPE, audit_failure
from filegate.storage import keys
from filegate.storage.s3 import put_json

log = logging.getLogger(__name__)
STAGED = "staged"  # the outputs field a handler's answer carries when its outputs wait for the worker


def is_staged(answer: dict[str, Any]) -> bool:
    return STAGED in (answer.get("outputs") or {})


def staged_objects(outputs: dict[str, Any]) -> dict[str, str]:
    """processed/ key → its staged copy, for every object the staged outputs will publish (Parquet, summary)."""
    prefix = outputs[STAGED]
    return {key: keys.staged_key(prefix, key) for key in [*outputs.get("parquet", []), outputs["summary"]]}


def finish_staged(s3: Any, bucket: str, contract: Contract, answer: dict[str, Any], *, arrived: date,
                  db_url: str | None = None) -> dict[str, Any]:
    """Loads, audits and publishes a handler's staged answer; returns the answer as the in-worker path would
    have given it (status, reason, outputs without `staged`). A database that cannot be reached raises: the
    staged objects stay for the retry, which stages them again anyway."""
    dest = contract.destinations.postgres
    if dest is None:
        raise ValueError(f"feed {contract.name} has no postgres destination, but its outputs were staged for one")
    outputs = {k: v for k, v in answer["outputs"].items() if k != STAGED}
    staged = staged_objects(answer["outputs"])
    document = json.loads(s3.get_object(Bucket=bucket, Key=staged[outputs["summary"]])["Body"].read())
    log.info("%s: the function staged %d Parquet file(s) under s3://%s/%s; loading %s.%s on the worker",
             document["file"], len(outputs.get("parquet", [])), bucket, answer["outputs"][STAGED], dest.db_schema,
             dest.table)
    with tempfile.TemporaryDirectory(prefix="filegate-staged-") as tmp:
        local = []
        for n, key in enumerate(outputs.get("parquet", [])):
            local.append(Path(tmp) / f"{n:04d}.parquet")
            s3.download_file(bucket, staged[key], str(local[-1]))
        try:
            report = load_postgres(db_url or target_dsn(dest), contract, local, sha256=document["sha256"],
                                   expected_rows=document["rows_output"])
        except LoadError as exc:
            reason = audit_failure(dest, exc)
            outputs.pop("parquet", None)
            outputs["summary"] = keys.quarantine_reason_key(
                contract.name, arrived, keys.file_stem(document["file"], document["sha256"]))
            put_json(s3, bucket, outputs["summary"], {**document, "status": "quarantined", "reason": reason,
                                                      "outputs": outputs})
            _delete(s3, bucket, staged.values())
            log.warning("%s: %s", document["file"], reason)
            return {**answer, "status": "quarantined", "reason": reason, "outputs": outputs}
    for key in outputs.get("parquet", []):
        # A managed copy: server-side, in parts above 8 MB (CopyObject alone stops at 5 GB).
        s3.copy({"Bucket": bucket, "Key": staged[key]}, bucket, key,
                ExtraArgs={"ContentType": PARQUET_CONTENT_TYPE, "MetadataDirective": "REPLACE"})
    outputs["postgres"] = {"table": report.table, "rows": report.published}
    put_json(s3, bucket, outputs["summary"], {**document, "outputs": outputs})
    _delete(s3, bucket, staged.values())
    log.info("%s: %d rows loaded into %s on the worker, %d Parquet file(s) published", document["file"],
             report.published, report.table, len(outputs.get("parquet", [])))
    return {**answer, "outputs": outputs}


def _delete(s3: Any, bucket: str, staged: Any) -> None:
    objects = [{"Key": key} for key in staged]
    for start in range(0, len(objects), 1000):  # DeleteObjects takes at most 1000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start:start + 1000], "Quiet": True})
