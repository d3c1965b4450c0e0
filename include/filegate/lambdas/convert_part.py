"""Lambda handler filegate-convert-part: one byte range of a raw file through the engine.

Event: functions/schemas/convert_part.schema.json. Two S3 Range GETs (the header, then the range) make a small
file the engine reads like any other; its Parquet, rejected rows, mergeable profile and result.json go to
<work_prefix>part-NNNNN/ for filegate-merge-parts. Nothing reaches processed/ from here."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from filegate.lambdas import runtime
from filegate.pipeline.engine import run_engine
from filegate.pipeline.parts import part_profile_state, part_result
from filegate.storage.keys import part_prefix
from filegate.storage.s3 import put_json, s3_client, upload_file

log = logging.getLogger(__name__)
runtime.configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = runtime.checked_event("convert_part", event)
    contract = runtime.contract_from_event(event)
    bucket, key, part = event["bucket"], event["raw_key"], event["part"]
    runtime.ensure_space(event["header_end"] + part["end"] - part["start"], what=f"part {part['index']} of {key}")
    s3 = s3_client()
    prefix = part_prefix(event["work_prefix"], part["index"])
    with tempfile.TemporaryDirectory(prefix="filegate-part-", dir=runtime.tmp_root()) as tmp:
        work = Path(tmp)
        local = work / "raw"
        with local.open("wb") as out:
            runtime.download_range(s3, bucket, key, 0, event["header_end"], out)
            lines = runtime.download_range(s3, bucket, key, part["start"], part["end"], out)
        result = run_engine(contract, local, arrived=runtime.arrival(event), work_dir=work, name=event["name"])
        local.unlink()  # room for the outputs
        summary = part_result(part["index"], result, lines=lines)
        summary["parquet"] = {
            value: upload_file(s3, bucket, f"{prefix}{n:04d}.parquet", path, "application/vnd.apache.parquet")
            for n, (value, path) in enumerate(sorted(result.parquet_files.items()))
        }
        summary["rejected"] = (upload_file(s3, bucket, f"{prefix}rejected.csv", result.rejected_file, "text/csv")
                               if result.rejected_file is not None else None)
        summary["profile"] = put_json(s3, bucket, f"{prefix}profile.json",
                                      part_profile_state(result))
    put_json(s3, bucket, f"{prefix}result.json", summary)
    log.info("part %d of %s: bytes %d-%d, %d rows (%d rejected), %s", part["index"], key, part["start"],
             part["end"], summary["rows_total"], summary["rows_rejected"], summary["status"])
    return {k: v for k, v in summary.items() if k not in ("issues", "schema")} | {"result": f"{prefix}result.json"}
