"""Computes one day's report from the status store: per feed and in total, for the files that arrived that day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from filegate.status.queries import FAILURE_STATUSES, FileFilter, Period, StatusQueries
from filegate.status.slot_ledger import SlotLedger

MAX_FAILURES_LISTED = 200
TOP_ISSUES = 10
DELIVERY_STATES = ("missed", "late", "expected", "arrived")


@dataclass(frozen=True)
class DailyReport:
    day: date
    period: Period
    generated_at: datetime
    feeds: list[dict[str, Any]]
    top_issues: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    failures_total: int
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # expected-delivery slots due in the period

    @property
    def totals(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for feed in self.feeds:
            for status, n in feed["by_status"].items():
                by_status[status] = by_status.get(status, 0) + n
        calls = sum(f["api_calls"] for f in self.feeds)
        ok = sum(f["api_ok"] for f in self.feeds)
        return {
            "files": sum(f["files"] for f in self.feeds),
            "by_status": dict(sorted(by_status.items())),
            "rows_in": sum(f["rows_in"] for f in self.feeds),
            "rows_valid": sum(f["rows_valid"] for f in self.feeds),
            "rows_rejected": sum(f["rows_rejected"] for f in self.feeds),
            "api_calls": calls,
            "api_success_rate": (ok / calls) if calls else None,
            "failures": self.failures_total,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "generated_at": self.generated_at.isoformat(),
            "totals": self.totals,
            "feeds": self.feeds,
            "top_issues": self.top_issues,
            "failures": self.failures,
            "failures_total": self.failures_total,
            "deliveries": self.deliveries,
            "deliveries_by_state": {state: n for state in DELIVERY_STATES
                                    if (n := sum(1 for d in self.deliveries if d["state"] == state))},
        }


def compute_daily_report(queries: StatusQueries, day: date, *, period: Period | None = None,
                         slots: SlotLedger | None = None) -> DailyReport:
    """`period` defaults to the UTC day; the DAG passes its run's data interval. With `slots`, the report lists
    the expected-delivery slots whose time falls in the period."""
    period = period or Period.days(day)
    failures = queries.list_files(FileFilter(statuses=FAILURE_STATUSES, period=period), limit=MAX_FAILURES_LISTED)
    listed = [
        {"id": r["id"], "feed": r["feed"], "name": r["name"], "status": r["status"], "reason": r["error"],
         "raw_key": r["raw_key"], "created_at": r["created_at"].isoformat(),
         "last_dag_id": r["last_dag_id"], "last_run_id": r["last_run_id"], "last_task_id": r["last_task_id"]}
        for r in failures.items
    ]
    issues = [{**i, "rows": int(i["rows"]), "files": int(i["files"])}
              for i in queries.top_issues(period, limit=TOP_ISSUES)]
    return DailyReport(day=day, period=period, generated_at=datetime.now(UTC), feeds=queries.feed_stats(period),
                       top_issues=issues, failures=listed, failures_total=failures.total,
                       deliveries=_deliveries(slots, period) if slots is not None else [])


def _deliveries(slots: SlotLedger, period: Period) -> list[dict[str, Any]]:
    # Slots are stored by local day: a day either side covers every time zone, then the period decides.
    rows = slots.between(period.start.date() - timedelta(days=1), period.end.date() + timedelta(days=1))
    return [{"feed": r["feed"], "expected_at": r["expected_at"].isoformat(), "local_day": r["local_day"].isoformat(),
             "state": r["state"], "files_expected": r["files_expected"], "pattern": r["pattern"],
             "files": [f["name"] for f in r["files"]], "delay_seconds": r["delay_seconds"]}
            for r in rows if period.start <= r["expected_at"] < period.end]


def headline(report: DailyReport) -> str:
    """One line for a notification subject or a log."""
    t = report.totals
    parts = [f"{t['files']} file(s)"] + [f"{n} {s}" for s, n in t["by_status"].items()]
    return f"Filegate daily report {report.day:%Y-%m-%d}: " + ", ".join(parts)
