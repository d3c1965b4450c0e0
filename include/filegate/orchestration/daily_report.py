"""Builds the `daily_report` DAG: one report per UTC day (its run's data interval), HTML + JSON + CSV to
s3://<bucket>/reports/<yyyy-mm-dd>/, then an SNS notification with the headline numbers and where it is."""

from __future__ import annotations

import logging
import os
from datetime import date, datetime
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from filegate.orchestration.policy import START_DATE, Tag, dag_kwargs

log = logging.getLogger(__name__)
DAG_ID = "daily_report"

DOC = """
# daily_report

One report per UTC day about the files that **arrived** that day (the run's data interval), per feed and in
total: files by status; rows in, valid and rejected; the top quality issues; API success rate and latency
percentiles (p50/p95/p99); processing latency percentiles (arrival → terminal status); failures with reasons;
the expected-delivery slots due that day (feeds with `expect:`) and their state: arrived, late, missed.

**Output:** `s3://<bucket>/reports/<yyyy-mm-dd>/report.html` (charts as inline SVG, no external resources),
`report.json`, `report.csv` (one row per feed + a TOTAL row) and `failures.csv`. Re-running a day overwrites
its folder. The Filegate page (Plugins → Filegate → Daily reports) lists and shows them. Then an SNS message
to `FILEGATE_ALERT_TOPIC_ARN` with the headline numbers and the S3 locations.

**Schedule:** `@daily` as a data-interval timetable (UTC), `catchup=True`: every past day since the start date
gets its report, and the run of day D (logical date D, started just after D ends) covers exactly D. The start date
is `FILEGATE_REPORT_START_DATE` (ISO date) when set, else the team's default.

**Operate:**
- Backfill or redo days: `airflow backfill create --dag-id daily_report --from-date 2026-11-01 --to-date 2026-11-07
  --reprocess-behavior completed`, or *Clear* a run in the UI.
- A report reflects statuses at the moment it ran; files still processing show up as `processing`. Clear the run
  later for final numbers.
- An empty day is still reported (zeros), so a missing folder always means the run did not happen.
"""


def report_start_date() -> datetime:
    """Environment, not I/O: lets a fresh deployment (or a test stack) skip a long catch-up."""
    raw = os.environ.get("FILEGATE_REPORT_START_DATE")
    return datetime.combine(date.fromisoformat(raw), datetime.min.time()) if raw else START_DATE


def _ui_report_url(day: date) -> str | None:
    from airflow.configuration import conf

    from filegate.orchestration.webapp.links import PLUGIN_PREFIX

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{PLUGIN_PREFIX}/api/reports/{day:%Y-%m-%d}/report.html" if base else None


def build_daily_report_dag() -> Any:
    kwargs = dag_kwargs(owner="data-engineering", tags=[Tag.REPORTING], doc_md=DOC)
    kwargs.update(start_date=report_start_date(), catchup=True)

    # A data-interval timetable, not Airflow 3's default trigger timetable: each run covers [day, day + 1).
    schedule = CronDataIntervalTimetable("@daily", timezone="UTC")

    @dag(dag_id=DAG_ID, schedule=schedule, max_active_runs=2, **kwargs)
    def daily_report() -> None:
        @task(doc_md="""Computes the day's numbers from the status store (files created in the data interval) and
writes report.html, report.json, report.csv and failures.csv to `reports/<day>/`. Idempotent: a re-run
overwrites the folder. Returns the S3 keys and the totals.""")
        def build_report(**context: Any) -> dict[str, Any]:
            from filegate.orchestration.connections import s3_client, status_store
            from filegate.reporting.archive import publish_report
            from filegate.reporting.daily import compute_daily_report, headline
            from filegate.settings import load_settings
            from filegate.status.queries import Period, StatusQueries

            start, end = context["data_interval_start"], context["data_interval_end"]
            period = Period(start, end)
            store = status_store()
            report = compute_daily_report(StatusQueries(store.dsn), start.date(), period=period, slots=store.slots)
            bucket = load_settings().bucket
            keys = publish_report(s3_client(), bucket, report)
            log.info("%s", headline(report))
            return {"day": report.day.isoformat(), "bucket": bucket, "keys": keys, "totals": report.totals}

        @task(doc_md="""Publishes the headline numbers and the report's S3 locations to the SNS topic
`FILEGATE_ALERT_TOPIC_ARN` (skipped with a warning when none is configured).""")
        def notify(built: dict[str, Any]) -> str | None:
            from airflow.providers.amazon.aws.hooks.sns import SnsHook

            from filegate.orchestration.connections import AWS_CONN_ID
            from filegate.reporting.archive import notification

            day = date.fromisoformat(built["day"])
            subject, message = notification(day, built["totals"], built["bucket"], built["keys"], _ui_report_url(day))
            topic = os.environ.get("FILEGATE_ALERT_TOPIC_ARN")
            if not topic:
                log.warning("FILEGATE_ALERT_TOPIC_ARN is not set; report not announced: %s", subject)
                return None
            response = SnsHook(aws_conn_id=AWS_CONN_ID).publish_to_target(target_arn=topic, message=message,
                                                                          subject=subject)
            log.info("announced %r on %s: %s", subject, topic, response)
            return str(response)

        notify(build_report())

    return daily_report()
