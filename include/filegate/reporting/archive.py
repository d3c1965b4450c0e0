"""The report archive: where daily reports live in S3 (reports/<yyyy-mm-dd>/), how they are written and
listed, and the notification that announces one."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from filegate.reporting.daily import DailyReport
from filegate.reporting.render import failures_csv, to_csv, to_html, to_json
from filegate.storage import keys

log = logging.getLogger(__name__)
REPORT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "report.json": "application/json",
    "report.csv": "text/csv; charset=utf-8",
    "failures.csv": "text/csv; charset=utf-8",
}


def report_key(day: date, name: str) -> str:
    if name not in REPORT_FILES:
        raise ValueError(f"unknown report file {name!r}; known: {', '.join(REPORT_FILES)}")
    return keys.report_key(day, name)


def publish_report(s3: Any, bucket: str, report: DailyReport) -> dict[str, str]:
    """Writes the four renderings; deterministic keys, so re-running a day overwrites it."""
    bodies = {
        "report.json": to_json(report),
        "report.csv": to_csv(report),
        "failures.csv": failures_csv(report),
        # Relative links: they work from S3, a download, and the plugin's report endpoint alike.
        "report.html": to_html(report, links={"JSON": "report.json", "CSV": "report.csv",
                                              "failures CSV": "failures.csv"}).encode(),
    }
    written = {}
    for name, body in bodies.items():
        key = report_key(report.day, name)
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=REPORT_FILES[name])
        written[name] = key
    log.info("daily report %s written to s3://%s/%s", report.day, bucket, keys.report_key(report.day, ""))
    return written


def list_report_days(s3: Any, bucket: str) -> list[date]:
    """Days that have a report folder, newest first."""
    days = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.REPORTS_PREFIX,
                                                                    Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            day = keys.report_day(prefix["Prefix"])
            if day:
                days.append(day)
    return sorted(days, reverse=True)


def notification(day: date, totals: dict[str, Any], bucket: str, keys: dict[str, str],
                 ui_url: str | None = None) -> tuple[str, str]:
    """The SNS subject (under 100 characters) and a JSON message: the headline numbers and the locations."""
    message = {
        "day": day.isoformat(),
        "files": totals["files"],
        "by_status": totals["by_status"],
        "rows_in": totals["rows_in"],
        "rows_valid": totals["rows_valid"],
        "rows_rejected": totals["rows_rejected"],
        "api_calls": totals["api_calls"],
        "api_success_rate": totals["api_success_rate"],
        "failures": totals["failures"],
        "report": {name: f"s3://{bucket}/{key}" for name, key in keys.items()},
    }
    if ui_url:
        message["ui"] = ui_url
    subject = f"Filegate report {day:%Y-%m-%d}: {totals['files']} files, {totals['failures']} failed/quarantined"
    return subject[:99], json.dumps(message, indent=2, default=str)
