"""The daily report's renderings, without services: hostile values stay text, CSV cells cannot run formulas."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

from filegate.reporting.archive import notification, report_key
from filegate.reporting.daily import DailyReport, headline
from filegate.reporting.render import failures_csv, to_csv, to_html, to_json
from filegate.status.queries import Period

EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def report(feeds: list[dict] | None = None) -> DailyReport:
    feed = {"feed": "orders", "files": 3, "by_status": {"processed": 2, "failed": 1}, "rows_in": 30,
            "rows_valid": 27, "rows_rejected": 3, "api_calls": 4, "api_ok": 3, "api_success_rate": 0.75,
            "api_latency_ms": {"p50": 10.0, "p95": 20.0, "p99": 30.0},
            "processing_latency_s": {"p50": 5.0, "p95": 9.0, "max": 10.0}}
    return DailyReport(
        day=date(2026, 11, 20), period=Period.days(date(2026, 11, 20)), generated_at=datetime(2026, 11, 21, tzinfo=UTC),
        feeds=[feed] if feeds is None else feeds,
        top_issues=[{"feed": "orders", "column": EVIL, "rule": "regex", "rows": 3, "files": 1}],
        failures=[{"id": 7, "feed": "orders", "name": EVIL + ".csv", "status": "failed", "reason": "=HYPERLINK(1)",
                   "raw_key": "raw/orders/x", "created_at": "2026-11-20T01:00:00+00:00"}],
        failures_total=1)


def test_html_escapes_names_reasons_and_issue_columns() -> None:
    html = to_html(report(), links={"JSON": "report.json"})
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert html.count("<svg") == 4


def test_csv_neutralises_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(failures_csv(report()).decode())))
    assert rows[0]["reason"] == "'=HYPERLINK(1)"
    summary = list(csv.DictReader(io.StringIO(to_csv(report()).decode())))
    assert [r["feed"] for r in summary] == ["orders", "TOTAL"] and summary[0]["api_success_rate"] == "0.75"


def test_json_totals_and_headline() -> None:
    data = json.loads(to_json(report()))
    assert data["totals"]["files"] == 3 and data["totals"]["api_success_rate"] == 0.75
    assert headline(report()) == "Filegate daily report 2026-11-20: 3 file(s), 1 failed, 2 processed"


def test_empty_report_renders() -> None:
    empty = report(feeds=[])
    assert "No files arrived on this day." in to_html(empty)
    assert to_csv(empty).decode().splitlines()[-1].startswith("TOTAL,0,")


def test_notification_fits_sns() -> None:
    keys = {"report.html": report_key(date(2026, 11, 20), "report.html")}
    subject, message = notification(date(2026, 11, 20), report().totals, "bucket", keys, "http://ui/x")
    assert len(subject) < 100 and json.loads(message)["report"]["report.html"] == \
        "s3://bucket/reports/2026-11-20/report.html"


def test_the_days_delivery_slots_are_listed_escaped_with_their_delay() -> None:
    slots = [{"feed": "stock_levels", "expected_at": "2026-11-20T05:00:00+00:00", "local_day": "2026-11-20",
              "state": "late", "files_expected": 1, "pattern": "stock_*.tsv", "files": [EVIL + ".tsv"],
              "delay_seconds": 5400},
             {"feed": "stock_levels", "expected_at": "2026-11-20T17:00:00+00:00", "local_day": "2026-11-20",
              "state": "missed", "files_expected": 2, "pattern": "stock_*.tsv", "files": [], "delay_seconds": None}]
    base = report()
    with_slots = DailyReport(**{**base.__dict__, "deliveries": slots})
    html = to_html(with_slots)
    assert "<h2>Expected deliveries</h2>" in html and '<tr class="slot late">' in html
    assert "<td>90</td>" in html and "0 of 2" in html and "<script>" not in html
    body = json.loads(to_json(with_slots))
    assert body["deliveries_by_state"] == {"missed": 1, "late": 1} and len(body["deliveries"]) == 2
    assert "No expected delivery was due on this day." in to_html(base)
