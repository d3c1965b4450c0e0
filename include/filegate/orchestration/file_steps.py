"""Task bodies shared by `process_<feed>` and `reprocess_files`: run a library step for one feed's files with
clients from Airflow connections, alert on every file it leaves `failed` or `quarantined`, and let Airflow retry
what an infrastructure error interrupted."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from filegate.orchestration.notify import alert_files, send_run_summary
from filegate.orchestration.task_context import actor, is_last_try
from filegate.settings import load_settings

log = logging.getLogger(__name__)
CLAIM_LIMIT = 500  # files one task claims at once; the rest wait for the next run


def process_step(feed_name: str, context: dict[str, Any], *, file_ids: Iterable[int] | None = None) -> list[int]:
    """Claims the feed's queued files (or just `file_ids`) and processes them; returns the ids still to deliver."""
    from filegate.contracts import get_contract
    from filegate.orchestration.connections import s3_client, status_store
    from filegate.orchestration.lambda_invoker import lambda_invoker
    from filegate.pipeline.steps import RetryableFailure, process_files

    store = status_store()
    try:
        report = process_files(store, s3_client(), load_settings().bucket, get_contract(feed_name), actor(context),
                               file_ids=file_ids, limit=CLAIM_LIMIT, last_try=is_last_try(context),
                               invoker=lambda_invoker())  # heavy files run on Lambda (contract `heavy`)
    except RetryableFailure as exc:
        if exc.report is not None:
            alert_files(store, exc.report.quarantined + exc.report.failed, context)
        raise
    alert_files(store, report.quarantined + report.failed, context)
    log.info("feed %s: processed %s, quarantined %s, failed %s", feed_name, report.done, report.quarantined,
             report.failed)
    return report.done


def deliver_step(feed_name: str, file_ids: Iterable[int], context: dict[str, Any]) -> dict[str, list[int]]:
    """Posts the files' records to the feed's API; each file ends `processed` or, finally, `failed`."""
    from filegate.contracts import get_contract
    from filegate.orchestration.connections import api_target, s3_client, status_store
    from filegate.pipeline.steps import RetryableFailure, deliver_files

    store = status_store()
    feed = get_contract(feed_name)
    try:
        report = deliver_files(store, s3_client(), load_settings().bucket, feed, actor(context), list(file_ids),
                               api_target(feed), last_try=is_last_try(context))
    except RetryableFailure as exc:
        if exc.report is not None:
            alert_files(store, exc.report.failed, context)
        raise
    alert_files(store, report.failed, context)
    return {"processed": report.done, "failed": report.failed}


def summarize_run(context: dict[str, Any]) -> None:
    """Sends the optional success summary of every file this run touched."""
    from filegate.orchestration.connections import status_store

    store = status_store()
    send_run_summary(store, [row["id"] for row in store.reads.files_of_run(context["ti"].run_id)], context)
