"""What an operator may do from the Filegate page besides reading: reprocess files (a `reprocess_files` run,
created by Airflow itself) and download a file's raw copy, rejected rows and reason (streamed from S3).

Who may do it is auth.py's rule; this module only does it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from filegate.orchestration.reprocess_files import DAG_ID as REPROCESS_DAG_ID

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20  # what a download holds in memory at once


class TriggerRefused(Exception):
    """Airflow would not create the run (the DAG is unknown, broken or refuses the params)."""


@dataclass(frozen=True)
class TriggeredRun:
    dag_id: str
    run_id: str
    paused: bool


def trigger_reprocess(file_ids: list[int], *, user: str, from_ui: bool) -> TriggeredRun:
    """Creates a manual `reprocess_files` run with `file_ids` through Airflow's own trigger logic (the one the
    `airflow dags trigger` command uses): its params are validated against the DAG's, and the run records who
    triggered it, like a click on Trigger in the Airflow UI."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists, ParamValidationError
    from airflow.models import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    by = DagRunTriggeredByType.UI if from_ui else DagRunTriggeredByType.REST_API
    try:
        run = trigger_dag(REPROCESS_DAG_ID, triggered_by=by, triggering_user_name=user,
                          conf={"file_ids": file_ids}, note=f"from the Filegate page by {user}: files {file_ids}")
    except (DagNotFound, DagRunAlreadyExists, ParamValidationError, ValueError) as exc:
        raise TriggerRefused(f"{REPROCESS_DAG_ID}: {exc}") from exc
    if run is None:
        raise TriggerRefused(f"{REPROCESS_DAG_ID}: Airflow created no run")
    with create_session() as session:
        model = DagModel.get_current(REPROCESS_DAG_ID, session=session)
        paused = bool(model and model.is_paused)
    log.info("%s asked to reprocess files %s: %s run %s", user, file_ids, REPROCESS_DAG_ID, run.run_id)
    return TriggeredRun(dag_id=REPROCESS_DAG_ID, run_id=str(run.run_id), paused=paused)


# -- downloads ------------------------------------------------------------------------------------------------

DOWNLOAD_KINDS = {
    "raw": "the raw copy, as it arrived",
    "rejected": "the rejected rows (CSV, one reason column per row)",
    "reason": "why the file was quarantined or failed (JSON)",
    "summary": "the processing summary of a processed file (JSON)",
}


def download_key(kind: str, file_row: dict[str, Any]) -> str | None:
    """The S3 key of one kind of download of this file, from its own row: never a key the caller names."""
    outputs = file_row.get("outputs") or {}
    if kind == "raw":
        return file_row.get("raw_key") or None
    if kind == "rejected":
        value = outputs.get("quarantine_rows")
        return value if isinstance(value, str) else None
    summary = outputs.get("summary")
    if not isinstance(summary, str):
        return None
    # processing writes the reason of a refused file to quarantine/, the summary of a published one to processed/
    is_reason = summary.startswith("quarantine/")
    return summary if (kind == "reason") == is_reason and kind in ("reason", "summary") else None


def available_downloads(file_row: dict[str, Any]) -> list[str]:
    return [kind for kind in DOWNLOAD_KINDS if download_key(kind, file_row)]


def download_name(kind: str, key: str) -> str:
    return key.rsplit("/", 1)[-1] or f"{kind}.bin"


def s3_chunks(body: Any) -> Iterator[bytes]:
    """The object's bytes as they come, CHUNK_BYTES at a time; the stream is closed however the response ends."""
    try:
        yield from body.iter_chunks(chunk_size=CHUNK_BYTES)
    finally:
        body.close()
