"""Builds the `recover_stalled_files` DAG: the safety net for files that no run is working on. A claim released
only by the next run of its feed (filegate.status.lease) waits forever on a feed where nothing else arrives; this
DAG finds such feeds every few minutes and starts their `process_<feed>`, whose claim releases the dead runs'
files and takes them exactly once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag, task

from filegate.orchestration.policy import Tag, dag_kwargs
from filegate.status.lease import MAX_EXPIRED_CLAIMS

if TYPE_CHECKING:
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

log = logging.getLogger(__name__)
DAG_ID = "recover_stalled_files"
SCHEDULE = "*/5 * * * *"
WAITING_ENV = "FILEGATE_STALLED_WAITING_S"
DEFAULT_WAITING_S = 900.0  # a queued file this old with no live run of its feed is stalled, not just waiting

DOC = f"""
# {DAG_ID}

The safety net for files no run is working on. Every 5 minutes it looks in the status store for feeds with
- files `processing` whose claim lease ran out (`FILEGATE_CLAIM_LEASE_S`, default 300 s): the run holding them
  was SIGKILLed, its worker scaled away, or its last try died;
- files `downloaded` or `queued` for more than `{WAITING_ENV}` seconds (default {DEFAULT_WAITING_S:.0f}) while no
  run of the feed holds a live lease (a run registered them and died before claiming);

and triggers `process_<feed>` for each (task `run_process_dag`, one mapped instance per feed, with the run note
saying why). That run's claim queues the dead runs' files again and takes them exactly once; loads and posts are
idempotent, so what the dead run had done is not done twice. A file whose runs die {MAX_EXPIRED_CLAIMS} times is
failed with that reason instead (a file that kills its worker would loop forever): find the cause in those runs'
task logs, then use `reprocess_files`.

**Operate:** nothing to do; a feed listed in this DAG's log run after run means its runs keep dying (see the
files' histories: `filegate history <id>`). Pausing this DAG leaves stalled files until the feed's next arrival.
"""


def build_recover_stalled_files_dag(trigger_operator: type[TriggerDagRunOperator]) -> Any:
    """`trigger_operator` is the standard provider's TriggerDagRunOperator, imported by the DAG file itself: its
    module imports Airflow's server-side DAG-run code (0.7 s), which the dag-processor then pre-imports once,
    before it forks the parses, instead of in every parse of the file."""
    kwargs = dag_kwargs(owner="data-engineering", tags=[Tag.OPERATIONS], doc_md=DOC)

    @dag(dag_id=DAG_ID, schedule=SCHEDULE, max_active_runs=1, **kwargs)
    def recover_stalled_files() -> None:
        @task(doc_md="Lists the feeds with stalled files (expired claims, or files left queued with no live run) "
                     "and returns their `process_<feed>` DAG ids.")
        def find_stalled_feeds() -> list[str]:
            from filegate.contracts.loader import load_contracts
            from filegate.orchestration.connections import status_store
            from filegate.settings import positive_seconds

            known = {contract.name for contract in load_contracts()}
            stalled = status_store().reads.stalled_feeds(waiting_for_s=positive_seconds(WAITING_ENV, DEFAULT_WAITING_S))
            for feed, counts in stalled.items():
                log.warning("feed %s: %d file(s) under an expired claim, %d waiting with no live run%s", feed,
                            counts["expired"], counts["waiting"],
                            "" if feed in known else " (no contract for this feed any more: left alone)")
            dag_ids = [f"process_{feed}" for feed in stalled if feed in known]
            log.info("triggering %s", dag_ids or "nothing: no stalled files")
            return dag_ids

        trigger_operator.partial(
            task_id="run_process_dag",
            note="Started by recover_stalled_files: this feed had files no run was working on.",
            doc_md="Triggers the feed's process DAG; its claim releases the expired claims and takes the files.",
        ).expand(trigger_dag_id=find_stalled_feeds())

    return recover_stalled_files()
