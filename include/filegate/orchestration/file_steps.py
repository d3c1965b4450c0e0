"""Task bodies shared by `process_<feed>` and `reprocess_files`: run a library step for one feed's files with
clients from Airflow connections, alert on every file it leaves `failed` or `quarantined`, and let Airflow retry
what an infrastructure error interrupted."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from filegate.orchestration.file_outputs import announce_finished_files
from filegate.orchestration.notify import alert_files, alert_schema_drift, send_run_summary
from filegate.orchestration.task_context import actor, is_last_try, next_try_in_s
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
            alert_schema_drift(store, exc.report.drift_warned, context)
        raise
    alert_files(store, report.quarantined + report.failed, context)
    alert_schema_drift(store, report.drift_warned, context)
    announce_finished_files(context, feed_name, report.quarantined + report.failed)
    log.info("feed %s: processed %s, quarantined %s, failed %s", feed_name, report.done, report.quarantined,
             report.failed)
    return report.done


def deliver_step(feed_name: str, file_ids: Iterable[int], context: dict[str, Any]) -> dict[str, list[int]]:
    """Posts the files' records to the feed's API; each file ends `processed` or, finally, `failed`. While the
    API is unavailable the step raises RetryableFailure and Airflow retries the task (policy.delivery_retry_args)
    until the destination's retry_for_minutes has passed."""
    from filegate.contracts import get_contract
    from filegate.orchestration.connections import api_target, s3_client, status_store
    from filegate.pipeline.steps import RetryableFailure, deliver_files

    store = status_store()
    feed = get_contract(feed_name)
    try:
        report = deliver_files(store, s3_client(), load_settings().bucket, feed, actor(context), list(file_ids),
                               api_target(feed), last_try=is_last_try(context), next_try_in_s=next_try_in_s(context))
    except RetryableFailure as exc:
        if exc.report is not None:
            alert_files(store, exc.report.failed, context)
        raise
    alert_files(store, report.failed, context)
    announce_finished_files(context, feed_name, report.done + report.failed)
    callback_step(feed, context)
    return {"processed": report.done, "failed": report.failed}


def callback_step(feed: Any, context: dict[str, Any]) -> None:
    """Calls back the uploaders of the feed's finished files (contract `callbacks`). A callback never fails the
    run: what could not be sent stays due for the feed's next run (filegate.callbacks.dispatch)."""
    if feed.callbacks is None:
        return
    from filegate.callbacks.dispatch import send_callbacks
    from filegate.orchestration.connections import callback_secret, status_store

    try:
        send_callbacks(status_store(), feed, actor(context), secret=callback_secret(feed.callbacks.secret_conn_id))
    except Exception:
        log.exception("callbacks of feed %s not sent this run; they stay due for the next one", feed.name)


def summarize_run(context: dict[str, Any]) -> None:
    """Sends the optional success summary of every file this run touched."""
    from filegate.orchestration.connections import status_store

    store = status_store()
    send_run_summary(store, [row["id"] for row in store.reads.files_of_run(context["ti"].run_id)], context)
