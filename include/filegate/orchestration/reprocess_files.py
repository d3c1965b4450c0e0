"""Builds the manual `reprocess_files` DAG: choose files by id, feed, arrival dates and status; re-run them from
their raw copies through the same process and deliver steps as `process_<feed>` (filegate.orchestration.file_steps).

Idempotent by construction: outputs have deterministic keys, and API batches already acknowledged are skipped,
so reprocessing a file that reached the API posts only what is missing.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Param, dag, task

from filegate.contracts.model import MAX_RETRY_FOR_MINUTES
from filegate.orchestration.assets import reprocess_alias
from filegate.orchestration.policy import Tag, dag_kwargs, delivery_retry_args
from filegate.status.lifecycle import REPROCESSABLE, Status

log = logging.getLogger(__name__)
DAG_ID = "reprocess_files"

DOC = f"""
# reprocess_files

Re-runs chosen files from their raw copies in `raw/` (never modified): requeue → process → deliver, the same
steps and code as `process_<feed>`. Trigger it by hand (**Trigger DAG** → fill in the form):

| param | meaning |
|---|---|
| `file_ids` | file ids (from `filegate status` or the Filegate view); empty: select by the filters below |
| `feed` | one feed |
| `arrived_from`, `arrived_to` | arrival dates, inclusive, `YYYY-MM-DD` |
| `statuses` | which files to take: {", ".join(sorted(REPROCESSABLE))} (default failed, quarantined), or \
`processing`: only files whose run is gone (claim lease expired: task SIGKILLed, worker lost), released and re-run |
| `dry_run` | only list what would run: `select_files` logs the plan, nothing changes, later tasks are skipped |

At least one of `file_ids`, `feed` or a date range is required. Bad params (unknown feed, unreadable or reversed
dates, a status that cannot be reprocessed such as `duplicate`, ids that do not exist, an empty selection) fail
`select_files` at once with a message that says what to change; no file is touched.

**Idempotent:** a processed file re-run rewrites the same outputs and posts nothing new (its API batches are
acknowledged); a failed file posts only the batches that were not acknowledged.
"""


def _params() -> dict[str, Param]:
    return {
        "file_ids": Param([], type="array", items={"type": "integer", "minimum": 1}, title="File ids",
                          description="Ids of the files to re-run; leave empty to select by feed, dates and status."),
        "feed": Param(None, type=["null", "string"], title="Feed", description="Only files of this feed."),
        "arrived_from": Param(None, type=["null", "string"], title="Arrived from",
                              description="First arrival date (YYYY-MM-DD), inclusive."),
        "arrived_to": Param(None, type=["null", "string"], title="Arrived to",
                            description="Last arrival date (YYYY-MM-DD), inclusive."),
        "statuses": Param([str(Status.FAILED), str(Status.QUARANTINED)], type="array", items={"type": "string"},
                          examples=sorted(str(s) for s in REPROCESSABLE), title="Statuses",
                          description="Which files to take: failed, quarantined, processed; processing takes "
                                      "only files whose run is gone (claim lease expired)."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Only log what would be reprocessed; change nothing."),
    }


def _by_feed(selection: list[dict[str, Any]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for row in selection:
        grouped.setdefault(row["feed"], []).append(row["id"])
    return grouped


def build_reprocess_dag() -> Any:
    @dag(dag_id=DAG_ID, schedule=None, max_active_runs=1, params=_params(),
         **dag_kwargs(owner="data-engineering", tags=[Tag.OPERATIONS], doc_md=DOC))
    def reprocess_files() -> None:
        @task(doc_md="Checks the params and lists the files they select (the dry-run output). Bad params fail "
                     "here, without retries, with a message that says what to change.")
        def select_files(**context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from filegate.contracts import load_contracts
            from filegate.orchestration.connections import status_store
            from filegate.pipeline.reprocess import ReprocessParamsError, parse_request, plan

            feeds = [c.name for c in load_contracts()]
            try:
                request = parse_request(dict(context["params"]), feeds)
                chosen = plan(status_store(), request, feeds)
            except ReprocessParamsError as exc:
                raise AirflowFailException(f"bad reprocess_files params: {exc}") from exc
            log.info("%s", chosen.describe())
            return {"dry_run": request.dry_run, "files": chosen.as_dicts()}

        @task(doc_md="Moves the selected files back to `queued` and claims them for this run (skipped on a dry "
                     "run).")
        def requeue_files(selection: dict[str, Any], **context: Any) -> dict[str, list[int]]:
            from airflow.sdk.exceptions import AirflowSkipException

            from filegate.orchestration.connections import status_store
            from filegate.orchestration.task_context import actor
            from filegate.pipeline.reprocess import requeue

            if selection["dry_run"]:
                raise AirflowSkipException(f"dry run: {len(selection['files'])} file(s) would be reprocessed; "
                                           "nothing changed")
            store = status_store()
            this_task = actor(context)
            queued = requeue(store, selection["files"], this_task)
            # Claim at once, so a process_<feed> run cannot take them; process_files re-takes them (same run).
            claimed = {row["id"] for row in store.claim(this_task, file_ids=[f["id"] for f in selection["files"]],
                                                        limit=len(selection["files"]) or 1)}
            log.info("requeued %d file(s) %s; held by this run: %s", len(queued), queued[:50], sorted(claimed)[:50])
            return _by_feed([f for f in selection["files"] if f["id"] in claimed])

        @task(doc_md="Processes the files from their raw copies, feed by feed (the process_<feed> step).")
        def process_files(queued: dict[str, list[int]], **context: Any) -> dict[str, list[int]]:
            from filegate.orchestration.file_steps import process_step
            from filegate.pipeline.steps import RetryableFailure

            done: dict[str, list[int]] = {}
            retry: list[str] = []
            for feed, ids in queued.items():
                try:
                    done[feed] = process_step(feed, context, file_ids=ids)
                except RetryableFailure as exc:  # the other feeds still run; Airflow retries this task after
                    retry.append(f"{feed}: {exc}")
            if retry:
                raise RetryableFailure("; ".join(retry))
            return done

        @task(doc_md="Posts each file's records not yet acknowledged by the API, feed by feed, and marks the "
                     "files `processed` (or `failed`, naming the failed batches). Retried while an API is "
                     "unavailable, up to each destination's retry_for_minutes.",
              outlets=[reprocess_alias()],  # an asset event per processed file (orchestration.assets)
              **delivery_retry_args(MAX_RETRY_FOR_MINUTES))
        def deliver_records(processed: dict[str, list[int]], **context: Any) -> dict[str, list[int]]:
            from filegate.orchestration.file_steps import deliver_step, summarize_run
            from filegate.pipeline.steps import RetryableFailure

            outcome: dict[str, list[int]] = {"processed": [], "failed": []}
            retry: list[str] = []
            for feed, ids in processed.items():
                try:
                    result = deliver_step(feed, ids, context)
                except RetryableFailure as exc:
                    retry.append(f"{feed}: {exc}")
                    continue
                outcome["processed"] += result["processed"]
                outcome["failed"] += result["failed"]
            if retry:
                raise RetryableFailure("; ".join(retry))
            summarize_run(context)
            return outcome

        deliver_records(process_files(requeue_files(select_files())))

    return reprocess_files()
