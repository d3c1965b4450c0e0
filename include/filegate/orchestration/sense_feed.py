"""Builds the `sense_<feed>` DAG: a time-scheduled run that owns its data interval and processes exactly the raw
files whose key date falls in it (filegate.ingestion.sensed), so `airflow backfill create` and the UI's backfill
re-run chosen dates. Processing and delivery are the same task bodies as `process_<feed>`
(filegate.orchestration.file_steps); the status store's atomic claim keeps one processing per file whichever
DAG gets there first.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from filegate.contracts.model import Contract
from filegate.orchestration.assets import outputs_alias
from filegate.orchestration.policy import Tag, dag_kwargs, delivery_retry_args

log = logging.getLogger(__name__)


def sensed_schedule(contract: Contract) -> str:
    """The contract's `source.sensed_schedule`, else hourly for S3 feeds (producers write any time) and daily
    for feeds Filegate copies in itself (FTP, upload), whose event-driven path already reacts in seconds."""
    if contract.source.sensed_schedule:
        return contract.source.sensed_schedule
    return "@hourly" if contract.source.kind == "s3" else "@daily"


def doc_for(contract: Contract) -> str:
    return f"""
# sense_{contract.name}

Sensed (scheduled, backfillable) arrival for feed `{contract.name}`, next to the event-driven
`process_{contract.name}`. Schedule: `{sensed_schedule(contract)}`.

**What a run owns:** each run covers the data interval from the previous schedule tick to its own (logical
date = interval start, so the run for 2026-11-03 of a daily schedule runs just after that day ends): the files
under `raw/{contract.name}/<yyyy>/<mm>/<dd>/` whose key date falls in the run's data interval
`[data_interval_start, data_interval_end)` (UTC; an interval shorter than a day owns its whole date, re-swept
each run, which is cheap because known files are skipped). `register_interval` registers new files (sha256,
duplicates), queues them, and returns exactly those ids; `process_files` and `deliver_records` then run them
like `process_{contract.name}` does.

**Idempotent:** files already `processed`, `quarantined` or `failed` are left alone, unless the run's param
`reprocess` is true: then they are queued again from their raw copy (API batches already acknowledged are not
posted again). Duplicates are never reprocessed.

**Backfill:** CLI `airflow backfill create --dag-id sense_{contract.name} --from-date 2026-11-01 --to-date
2026-11-03` (add `--dag-run-conf '{{"reprocess": true}}'` to redo finished files, `--reprocess-behavior
completed` to re-run dates that already have a run); UI: this DAG → **Trigger** → **Backfill**.
"""


def build_sense_dag(contract: Contract) -> Any:
    @dag(
        dag_id=f"sense_{contract.name}",
        # Data intervals [previous tick, this tick), logical date = their start: a daily run for the 3rd owns
        # the 3rd and runs once it is over. (A plain cron string would give Airflow 3's zero-length intervals.)
        schedule=CronDataIntervalTimetable(sensed_schedule(contract), timezone="UTC"),
        max_active_runs=2,
        params={"reprocess": Param(False, type="boolean", title="Reprocess finished files",
                                   description="Queue the interval's processed, quarantined and failed files "
                                               "again from their raw copies.")},
        **dag_kwargs(owner=contract.owner, tags=[Tag.INGESTION, "sensed", *contract.tags],
                     doc_md=doc_for(contract)),
    )
    def sense_feed() -> None:
        @task(doc_md="Registers and queues the raw files whose key date falls in this run's data interval; "
                     "returns their ids (with `reprocess`, finished files too).")
        def register_interval(**context: Any) -> list[int]:
            from filegate.contracts import get_contract
            from filegate.ingestion.sensed import register_interval
            from filegate.orchestration.connections import s3_client, status_store
            from filegate.orchestration.task_context import actor
            from filegate.settings import load_settings

            start, end = context.get("data_interval_start"), context.get("data_interval_end")
            if start is None or end is None:
                raise ValueError("this run has no data interval: trigger sense DAGs for a logical date "
                                 "(scheduled run, backfill, or Trigger with a logical date)")
            report = register_interval(status_store(), s3_client(), load_settings().bucket,
                                       get_contract(contract.name), actor(context), start=start, end=end,
                                       reprocess=bool(context["params"].get("reprocess")))
            log.info("%s", report.describe())
            return report.to_process

        @task(doc_md="Claims exactly this interval's queued files and runs each through parse → validate → "
                     "transform → Parquet (same code as process_<feed>).")
        def process_files(file_ids: list[int], **context: Any) -> list[int]:
            from filegate.orchestration.file_steps import process_step

            return process_step(contract.name, context, file_ids=file_ids)

        @task(doc_md="Posts each processed file's records to the feed's API and marks the file `processed`. While "
                     "the API is unavailable the task is retried (no worker slot held between tries) until the "
                     "destination's retry_for_minutes has passed; each wait is in the file's history.",
              outlets=[outputs_alias(contract.name)],  # an asset event per processed file (orchestration.assets)
              **delivery_retry_args(contract.destinations.api.retry_for_minutes if contract.destinations.api
                                    else 0))
        def deliver_records(processed: list[int], **context: Any) -> dict[str, list[int]]:
            from filegate.orchestration.file_steps import deliver_step

            return deliver_step(contract.name, processed, context)

        deliver_records(process_files(register_interval()))

    return sense_feed()
