"""Builds the `watch_deliveries` DAG: keeps every feed's expected-delivery slots current in the status store and
alerts through SNS when one turns late or missed (filegate.schedule.watch does the work)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import dag, task

from filegate.orchestration.policy import Tag, dag_kwargs

log = logging.getLogger(__name__)
DAG_ID = "watch_deliveries"
# Every 3 minutes: a slot that turns late or missed right after a run is announced by the next one, which with
# the run's own start-up stays within the 5 minutes promised (every 5 minutes would miss it by seconds).
SCHEDULE = "*/3 * * * *"

DOC = """
# watch_deliveries

Expected deliveries: for every feed whose contract has an `expect:` block (docs: *Expected deliveries*), records
its slots from a week back to two days ahead in the status store (`delivery_slot`), counts each newly registered
file for its slot, and moves slots along **expected → arrived | late | missed** (a missed slot whose files come
after all turns **late**, with the delay recorded). Each slot that turns late or missed gets one SNS alert on
`FILEGATE_ALERT_TOPIC_ARN` (kind `delivery_late` / `delivery_missed`, attribute `feed`).

**Schedule:** every 3 minutes, no catch-up (each run looks at the present), one run at a time.
Files are also counted the moment they register (ingestion), so a late file turns its slot late at once and this
DAG only announces it.

**Operate:** the Filegate page's *Deliveries* calendar and `GET /filegate/api/deliveries` show the slots. A slot
missed long before the watch first saw it (a new `expect:` block, an outage of more than a day) is recorded
without an alert. An alert that could not be sent is tried again by the next run.
"""


def build_watch_deliveries_dag() -> Any:
    kwargs = dag_kwargs(owner="data-engineering", tags=[Tag.OPERATIONS], doc_md=DOC)

    @dag(dag_id=DAG_ID, schedule=SCHEDULE, max_active_runs=1, **kwargs)
    def watch_deliveries() -> None:
        @task(doc_md="""Records the slots of every feed with `expect:`, counts new files for them, updates their
states and publishes one SNS alert per slot that turned late or missed. Logs every change.""")
        def watch() -> dict[str, Any]:
            from filegate.contracts.loader import load_contracts
            from filegate.orchestration.connections import status_store
            from filegate.orchestration.notify import send
            from filegate.schedule.watch import watch as watch_slots

            report = watch_slots(status_store(), load_contracts(), send, calendar_url=_calendar_url())
            for change in report.changes:
                log.info("slot %s", change)
            log.info("%s slot(s) added, %s file(s) counted, %s change(s), %s alert(s) sent, %s skipped",
                     report.slots_added, report.files_counted, len(report.changes), report.alerts_sent,
                     report.alerts_skipped)
            return {"slots_added": report.slots_added, "files_counted": report.files_counted,
                    "changes": report.changes, "alerts_sent": report.alerts_sent}

        watch()

    return watch_deliveries()


def _calendar_url() -> str | None:
    from airflow.configuration import conf

    from filegate.orchestration.webapp.links import PLUGIN_PREFIX

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{PLUGIN_PREFIX}/page?tab=deliveries" if base else None
