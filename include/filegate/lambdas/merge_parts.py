"""Lambda handler filegate-merge-parts: the parts of one file become the outputs one run would have made.

Event: functions/schemas/merge_parts.schema.json. Profiles merge (TableProfile.merge), issues and counts add,
row numbers are renumbered to the whole file, Parquet is concatenated per partition in part order; then the
same schema-drift check and publish() as every other path write processed/ and quarantine/ (Write-Audit-Publish)
and the parts are deleted. With `staged_publish_prefix` (a feed with `destinations.postgres`: the function has no
database) a processed file's Parquet and summary wait there for the worker's load (filegate.pipeline.staged_publish)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from filegate.contracts.model import Contract
from filegate.lambdas import runtime
from filegate.pipeline.parts import MergeInput, merge_parts
from filegate.pipeline.publish import load_destinations, publish
from filegate.pipeline.schema_check import check_schema
from filegate.storage.keys import part_prefix
from filegate.storage.s3 import list_keys, s3_client

log = logging.getLogger(__name__)
runtime.configure_logging()


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _load_part(s3: Any, bucket: str, prefix: str, work: Path) -> MergeInput:
    result = _read_json(s3, bucket, f"{prefix}result.json")
    folder = work / f"part-{result['index']:05d}"
    folder.mkdir()
    parquet = {}
    for n, (value, key) in enumerate(result["parquet"].items()):
        parquet[value] = folder / f"{n:04d}.parquet"
        s3.download_file(bucket, key, str(parquet[value]))
    rejected = None
    if result["rejected"]:
        rejected = folder / "rejected.csv"
        s3.download_file(bucket, result["rejected"], str(rejected))
    return MergeInput(result, parquet, rejected, _read_json(s3, bucket, result["profile"]))


def merge(s3: Any, event: dict[str, Any], contract: Contract) -> dict[str, Any]:
    bucket, work_prefix = event["bucket"], event["work_prefix"]
    staged = sum(o["Size"] for o in list_keys(s3, bucket, work_prefix))
    runtime.ensure_space(staged, what=f"merging {event['parts']} parts of {event['raw_key']}", factor=2.2)
    with tempfile.TemporaryDirectory(prefix="filegate-merge-", dir=runtime.tmp_root()) as tmp:
        work = Path(tmp)
        parts = [_load_part(s3, bucket, part_prefix(work_prefix, i), work) for i in range(event["parts"])]
        result = merge_parts(contract, parts, work)
        check_schema(contract, result, event.get("schema_baseline"))
        staged_prefix = event.get("staged_publish_prefix")
        # Without a staging prefix a Postgres feed is loaded here, as in-worker (this needs a database: without
        # one the invocation fails by name; publishing unloaded would lose the rows without a word).
        loaded = None if staged_prefix else load_destinations(contract, result, sha256=event["sha256"])
        outputs = publish(s3, bucket, contract, result, name=event["name"], sha256=event["sha256"],
                          raw_key=event["raw_key"], arrived=runtime.arrival(event), loaded=loaded,
                          staged_prefix=staged_prefix)
    deleted = runtime.delete_prefix(s3, bucket, work_prefix, keep=staged_prefix)
    log.info("%s: merged %d parts → %s (%d rows, %d rejected); %d staging objects removed", event["raw_key"],
             event["parts"], result.status, result.rows_total, result.rows_rejected, deleted)
    rows = {"total": result.rows_total, "valid": result.rows_valid, "rejected": result.rows_rejected}
    return runtime.response(result.status, result.reason, outputs, rows=rows)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = runtime.checked_event("merge_parts", event)
    return merge(s3_client(), event, runtime.contract_from_event(event))
