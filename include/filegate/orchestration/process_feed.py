"""Builds the `process_<feed>` DAG of one feed contract: register arrivals → process files → deliver records.

Files move between tasks as status-store ids, never as data; each task handles a batch of files, so a burst of
files is a few task instances, while every file keeps its own status row and history.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import Asset, AssetWatcher, dag, task
from airflow.triggers.base import BaseEventTrigger

from filegate.contracts.model import Contract
from filegate.orchestration.assets import outputs_alias
from filegate.orchestration.policy import Tag, dag_kwargs, delivery_retry_args
from filegate.settings import load_settings

log = logging.getLogger(__name__)


def feed_asset(contract: Contract, arrival_trigger: type[BaseEventTrigger]) -> Asset:
    """The feed's raw prefix as an Asset; with an SQS queue configured, S3 events trigger runs within seconds."""
    settings = load_settings()
    watchers = []
    if settings.sqs_queue_base_url:
        trigger = arrival_trigger(
            scheme="sqs",
            sqs_queue=f"{settings.sqs_queue_base_url.rstrip('/')}/{contract.queue_name}",
            aws_conn_id="aws_default",
            # The provider default sleeps 60 s after an empty poll; long polling keeps latency near 1 s.
            waiter_delay=int(os.environ.get("FILEGATE_SQS_WAITER_DELAY", "1")),
            wait_time_seconds=10,
            max_messages=10,
        )
        watchers.append(AssetWatcher(name=f"{contract.name}_arrivals", trigger=trigger))
    return Asset(name=f"filegate_raw_{contract.name}", uri=f"s3://{settings.bucket}/{contract.raw_prefix}",
                 watchers=watchers)


def doc_for(contract: Contract) -> str:
    api = contract.destinations.api
    columns = "\n".join(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.description} |"
                        for c in contract.columns) or "| (inferred) | | | |"
    return f"""
# process_{contract.name}

{contract.description}

**Trigger:** an S3 `ObjectCreated` event under `{contract.raw_prefix}` (SQS queue `{contract.queue_name}`);
each run also sweeps the prefix for files not yet registered, so nothing is lost while the DAG is paused.
A manual trigger runs just the sweep.

**Steps:** `register_arrivals` (sha256, duplicate check, `downloaded` → `queued`) → `process_files`
(claim, parse, validate against `include/feeds/{contract.name}.yaml`, transform, Parquet to `processed/`,
rejected rows to `quarantine/`) → `deliver_records` (POST to `{api.endpoint if api else 'no API'}` in batches,
idempotent) → file status `processed`, `quarantined` or `failed`.

**Operate:** `filegate status --feed {contract.name}` lists files and reasons. A failed file is re-run with
the `reprocess_files` DAG; `raw/` is never modified. Rejected-row limit: {contract.thresholds.max_rejected_share:.0%}.

| column | type | nullable | description |
|---|---|---|---|
{columns}
"""


def build_process_dag(contract: Contract, arrival_trigger: type[BaseEventTrigger]) -> Any:
    """`arrival_trigger` is common-messaging's MessageQueueTrigger, imported by the DAG file itself so that the
    dag-processor pre-imports it (and boto3 behind it) once instead of in every parse."""

    @dag(
        dag_id=f"process_{contract.name}",
        schedule=[feed_asset(contract, arrival_trigger)],
        max_active_runs=4,
        **dag_kwargs(owner=contract.owner, tags=[Tag.PROCESSING, *contract.tags], doc_md=doc_for(contract)),
    )
    def process_feed() -> None:
        @task(doc_md="Registers new raw files (from S3 events and a prefix sweep) and queues them.")
        def register_arrivals(**context: Any) -> list[int]:
            from filegate.contracts import get_contract
            from filegate.ingestion.arrivals import keys_from_s3_events, register_arrivals
            from filegate.orchestration.connections import s3_client, status_store
            from filegate.orchestration.task_context import actor, event_messages

            feed = get_contract(contract.name)
            event_keys = keys_from_s3_events(event_messages(context))
            log.info("%d key(s) from S3 events: %s", len(event_keys), event_keys[:20])
            queued = register_arrivals(status_store(), s3_client(), load_settings().bucket, feed, actor(context),
                                       event_keys=event_keys)
            log.info("queued %d file(s): %s", len(queued), queued[:50])
            return queued

        @task(doc_md="Claims queued files and runs each through parse → validate → transform → Parquet.")
        def process_files(queued: list[int], **context: Any) -> list[int]:
            from filegate.orchestration.file_steps import process_step

            return process_step(contract.name, context)

        @task(doc_md="Posts each processed file's records to the feed's API and marks the file `processed`. While "
                     "the API is unavailable the task is retried (no worker slot held between tries) until the "
                     "destination's retry_for_minutes has passed; each wait is in the file's history.",
              outlets=[outputs_alias(contract.name)],  # an asset event per processed file (orchestration.assets)
              **delivery_retry_args(contract.destinations.api.retry_for_minutes if contract.destinations.api
                                    else 0))
        def deliver_records(processed: list[int], **context: Any) -> dict[str, list[int]]:
            from filegate.orchestration.file_steps import deliver_step, summarize_run

            outcome = deliver_step(contract.name, processed, context)
            summarize_run(context)
            return outcome

        deliver_records(process_files(register_arrivals()))

    return process_feed()
