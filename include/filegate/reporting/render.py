"""Renders a daily report as JSON, CSV and a self-contained HTML page with inline SVG charts.

The HTML loads nothing from outside (no script, no CDN, no font) and escapes every value it shows: file names
and error messages come from partners and must never become markup.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from html import escape
from typing import Any

from filegate.reporting.daily import DailyReport

STATUS_COLORS = {
    "processed": "#2e7d32", "duplicate": "#757575", "quarantined": "#ef6c00", "failed": "#c62828",
    "processing": "#1565c0", "queued": "#5e35b1", "downloaded": "#00838f", "pending": "#9e9e9e",
}
STATUS_ORDER = list(STATUS_COLORS)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ["feed", "files", *STATUS_ORDER, "rows_in", "rows_valid", "rows_rejected", "api_calls", "api_ok",
               "api_success_rate", "api_p50_ms", "api_p95_ms", "api_p99_ms", "processing_p50_s",
               "processing_p95_s", "processing_max_s"]


def to_json(report: DailyReport) -> bytes:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str).encode()


def _inert(value: Any) -> Any:
    """Keeps spreadsheet formulas from running when someone opens the CSV in Excel."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _feed_row(feed: dict[str, Any]) -> dict[str, Any]:
    return {
        "feed": feed["feed"], "files": feed["files"],
        **{s: feed["by_status"].get(s, 0) for s in STATUS_ORDER},
        "rows_in": feed["rows_in"], "rows_valid": feed["rows_valid"], "rows_rejected": feed["rows_rejected"],
        "api_calls": feed["api_calls"], "api_ok": feed["api_ok"],
        "api_success_rate": "" if feed["api_success_rate"] is None else round(feed["api_success_rate"], 4),
        **{f"api_{p}_ms": _blank(feed["api_latency_ms"][p]) for p in ("p50", "p95", "p99")},
        **{f"processing_{p}_s": _blank(feed["processing_latency_s"][p]) for p in ("p50", "p95", "max")},
    }


def _blank(value: Any) -> Any:
    return "" if value is None else value


def to_csv(report: DailyReport) -> bytes:
    """One row per feed, then a TOTAL row (percentiles do not add up, so they stay empty there)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for feed in report.feeds:
        writer.writerow({k: _inert(v) for k, v in _feed_row(feed).items()})
    t = report.totals
    writer.writerow({
        "feed": "TOTAL", "files": t["files"], **{s: t["by_status"].get(s, 0) for s in STATUS_ORDER},
        "rows_in": t["rows_in"], "rows_valid": t["rows_valid"], "rows_rejected": t["rows_rejected"],
        "api_calls": t["api_calls"], "api_ok": sum(f["api_ok"] for f in report.feeds),
        "api_success_rate": "" if t["api_success_rate"] is None else round(t["api_success_rate"], 4),
    })
    return out.getvalue().encode()


def failures_csv(report: DailyReport) -> bytes:
    out = io.StringIO()
    columns = ["id", "feed", "name", "status", "reason", "raw_key", "created_at"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for failure in report.failures:
        writer.writerow({k: _inert(failure.get(k)) for k in columns})
    return out.getvalue().encode()


# -- HTML ----------------------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def status_bars_svg(feeds: Sequence[dict[str, Any]], width: int = 640) -> str:
    """One stacked horizontal bar per feed: files by status."""
    if not feeds:
        return '<p class="empty">No files arrived on this day.</p>'
    label_w, bar_h, gap = 140, 22, 10
    top = max((f["files"] for f in feeds), default=1) or 1
    scale = (width - label_w - 60) / top
    height = len(feeds) * (bar_h + gap) + 30
    parts = [f'<svg class="chart" role="img" aria-label="Files by status and feed" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, feed in enumerate(feeds):
        y = i * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 16}" font-size="13">{_e(feed["feed"])}</text>')
        x = float(label_w)
        for status in STATUS_ORDER:
            n = feed["by_status"].get(status, 0)
            if not n:
                continue
            w = n * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" '
                         f'fill="{STATUS_COLORS[status]}"><title>{_e(status)}: {n}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}" font-size="12">{feed["files"]}</text>')
    legend_y = len(feeds) * (bar_h + gap) + 14
    x = 0
    for status in STATUS_ORDER:
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="10" height="10" fill="{STATUS_COLORS[status]}"/>'
                     f'<text x="{x + 14}" y="{legend_y}" font-size="11">{_e(status)}</text>')
        x += 78
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars_svg(title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]],
                     unit: str, width: int = 640) -> str:
    """Vertical grouped bars: one group per label, one bar per series (name, colour, values)."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    if not labels or not values:
        return f'<p class="empty">{_e(title)}: no data on this day.</p>'
    top = max(values) or 1.0
    plot_h, base_y, left = 160, 190, 50
    group_w = (width - left) / len(labels)
    bar_w = max(4.0, min(28.0, (group_w - 12) / len(series)))
    height = 240
    parts = [f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="14" font-size="13" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{left}" y1="{base_y}" x2="{width}" y2="{base_y}" stroke="#999"/>',
             f'<text x="0" y="{base_y - plot_h + 4}" font-size="11">{_e(_num(top))}</text>',
             f'<text x="0" y="{base_y}" font-size="11">0 {_e(unit)}</text>']
    for g, label in enumerate(labels):
        gx = left + g * group_w + 6
        for s, (name, colour, vs) in enumerate(series):
            value = vs[g]
            if value is None:
                continue
            h = plot_h * value / top
            parts.append(f'<rect x="{gx + s * bar_w:.1f}" y="{base_y - h:.1f}" width="{bar_w - 2:.1f}" '
                         f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{_e(label)} {_e(name)}: '
                         f'{_e(_num(value))} {_e(unit)}</title></rect>')
        parts.append(f'<text x="{gx:.1f}" y="{base_y + 16}" font-size="12">{_e(label)}</text>')
    x = left
    for name, colour, _ in series:
        parts.append(f'<rect x="{x}" y="{height - 18}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{height - 9}" font-size="11">{_e(name)}</text>')
        x += 110
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:right;vertical-align:top}th{background:#f4f4f4}td.text,th.text{text-align:left}
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.tile b{display:block;font-size:20px}.empty{color:#777;font-style:italic}.reason{max-width:520px;
white-space:pre-wrap;word-break:break-word}
"""


def to_html(report: DailyReport, *, links: dict[str, str] | None = None) -> str:
    t = report.totals
    feeds = report.feeds
    labels = [f["feed"] for f in feeds]
    tiles = [("files", _num(t["files"])), ("processed", _num(t["by_status"].get("processed", 0))),
             ("failed + quarantined", _num(t["failures"])), ("rows in", _num(t["rows_in"])),
             ("rows valid", _num(t["rows_valid"])), ("rows rejected", _num(t["rows_rejected"])),
             ("API success", _pct(t["api_success_rate"]))]
    feed_rows = "".join(
        "<tr>" + f'<td class="text">{_e(f["feed"])}</td><td>{_num(f["files"])}</td>'
        + "".join(f"<td>{_num(f['by_status'].get(s, 0))}</td>" for s in STATUS_ORDER)
        + f"<td>{_num(f['rows_in'])}</td><td>{_num(f['rows_valid'])}</td><td>{_num(f['rows_rejected'])}</td>"
        + f"<td>{_num(f['api_calls'])}</td><td>{_pct(f['api_success_rate'])}</td>"
        + "".join(f"<td>{_num(f['api_latency_ms'][p])}</td>" for p in ("p50", "p95", "p99"))
        + "".join(f"<td>{_num(f['processing_latency_s'][p])}</td>" for p in ("p50", "p95", "max"))
        + "</tr>"
        for f in feeds
    )
    feed_table = (
        '<table><tr><th class="text">feed</th><th>files</th>'
        + "".join(f"<th>{_e(s)}</th>" for s in STATUS_ORDER)
        + "<th>rows in</th><th>valid</th><th>rejected</th><th>API calls</th><th>API success</th>"
        + "<th>API p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>processing p50 s</th><th>p95 s</th><th>max s</th>"
        + f"</tr>{feed_rows}</table>"
    ) if feeds else '<p class="empty">No files arrived on this day.</p>'
    issues = "".join(
        f'<tr><td class="text">{_e(i["feed"])}</td><td class="text">{_e(i["column"])}</td>'
        f'<td class="text">{_e(i["rule"])}</td><td>{_num(i["rows"])}</td><td>{_num(i["files"])}</td></tr>'
        for i in report.top_issues
    )
    issues_table = ('<table><tr><th class="text">feed</th><th class="text">column</th><th class="text">rule</th>'
                    f"<th>rows</th><th>files</th></tr>{issues}</table>") if issues else \
        '<p class="empty">No quality issues.</p>'
    failures = "".join(
        f'<tr><td>{_e(f["id"])}</td><td class="text">{_e(f["feed"])}</td><td class="text">{_e(f["name"])}</td>'
        f'<td class="text">{_e(f["status"])}</td><td class="text reason">{_e(f["reason"])}</td></tr>'
        for f in report.failures
    )
    more = report.failures_total - len(report.failures)
    failures_table = ('<table><tr><th>id</th><th class="text">feed</th><th class="text">file</th>'
                      f'<th class="text">status</th><th class="text">reason</th></tr>{failures}</table>'
                      + (f"<p>… and {more:,} more (see the JSON).</p>" if more > 0 else "")) if failures else \
        '<p class="empty">No failures.</p>'
    deliveries = "".join(
        f'<tr class="slot {_e(d["state"])}"><td class="text">{_e(d["feed"])}</td>'
        f'<td class="text">{_e(d["expected_at"])}</td>'
        f'<td class="text">{_e(d["state"])}</td><td>{_num(len(d["files"]))} of {_num(d["files_expected"])}</td>'
        f'<td>{_num((d["delay_seconds"] or 0) / 60, 0)}</td><td class="text">{_e(", ".join(d["files"]))}</td></tr>'
        for d in report.deliveries
    )
    deliveries_table = ('<table><tr><th class="text">feed</th><th class="text">slot (UTC)</th><th class="text">state'
                        '</th><th>files</th><th>delay min</th><th class="text">files that came</th></tr>'
                        f"{deliveries}</table>") if deliveries else \
        '<p class="empty">No expected delivery was due on this day.</p>'
    link_html = " · ".join(f'<a href="{_e(href)}">{_e(name)}</a>' for name, href in (links or {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Filegate daily report {_e(report.day.isoformat())}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>Filegate daily report — {_e(report.day.isoformat())}</h1>
<p>Files that arrived between {_e(report.period.start.isoformat())} and {_e(report.period.end.isoformat())}
(UTC), with their status at {_e(report.generated_at.strftime('%Y-%m-%d %H:%M:%S %Z'))}. {link_html}</p>
<div class="tiles">{"".join(f'<div class="tile"><b>{v}</b>{_e(k)}</div>' for k, v in tiles)}</div>
<h2>Files by status</h2>
{status_bars_svg(feeds)}
<h2>Per feed</h2>
{feed_table}
<h2>Rows</h2>
{grouped_bars_svg("Rows per feed", labels, [("valid", "#2e7d32", [f["rows_valid"] for f in feeds]),
                                           ("rejected", "#c62828", [f["rows_rejected"] for f in feeds])], "rows")}
<h2>API latency</h2>
{grouped_bars_svg("API latency per feed", labels,
                  [(p, c, [f["api_latency_ms"][p] for f in feeds])
                   for p, c in (("p50", "#64b5f6"), ("p95", "#1e88e5"), ("p99", "#0d47a1"))], "ms")}
<h2>Processing latency (arrival → terminal status)</h2>
{grouped_bars_svg("Processing latency per feed", labels,
                  [(p, c, [f["processing_latency_s"][p] for f in feeds])
                   for p, c in (("p50", "#a5d6a7"), ("p95", "#43a047"), ("max", "#1b5e20"))], "s")}
<h2>Top quality issues</h2>
{issues_table}
<h2>Failures ({_num(report.failures_total)})</h2>
{failures_table}
<h2>Expected deliveries</h2>
{deliveries_table}
</body></html>
"""
