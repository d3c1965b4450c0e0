"""The built-in, offline engine: a small grammar of questions, written as data, that turns a question into SQL
over the Ask views (readable_views.py). Its SQL then goes through the guard like any other.

A question is read in five passes, each removing what it recognised: a date range (DATES), filters (FILTERS),
a top-N (TOP), a group-by (GROUPS) and the metrics (METRICS). Words left over that are not in FILLER make the
question one the grammar does not understand: it says so, with examples, instead of answering something else.
Every rule is a regular expression over the lower-cased question; docs/ask.md lists them.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

# -- the rules ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    name: str  # the answer's column
    view: str
    sql: str  # an aggregate over the view
    words: str  # regular expression


METRICS: tuple[Metric, ...] = (
    Metric("revenue", "sales", "sum(revenue)", r"revenue|turnover|sales amount"),
    Metric("units", "sales", "CAST(sum(units) AS BIGINT)", r"units|quantity|items sold"),
    Metric("transactions", "sales", "CAST(sum(transactions) AS BIGINT)", r"transactions|orders|sales count"),
    # a mean of per-day means would be wrong: weight each day's mean price by its transactions
    Metric("average_price", "sales",
           "round(CAST(sum(average_price * transactions) / nullif(sum(transactions), 0) AS NUMERIC), 2)",
           r"average (?:unit )?price|avg price|mean price"),
    Metric("rejected_rows", "files", "CAST(coalesce(sum(rows_rejected), 0) AS BIGINT)",
           r"rejected rows|rejects|rows rejected"),
    Metric("valid_rows", "files", "CAST(coalesce(sum(rows_valid), 0) AS BIGINT)", r"valid rows"),
    Metric("rows", "files", "CAST(coalesce(sum(rows_total), 0) AS BIGINT)", r"rows"),
    Metric("failures", "files", "count(*) FILTER (WHERE status = 'failed')", r"failures|failed files"),
    Metric("bytes", "files", "CAST(coalesce(sum(size_bytes), 0) AS BIGINT)", r"bytes|size"),
    Metric("files", "files", "count(*)", r"files"),
)


@dataclass(frozen=True)
class Dimension:
    name: str  # the view column
    views: tuple[str, ...]
    words: str  # regular expression: the dimension named after "per", "by", "top 5", …


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("seller", ("sales",), r"sellers?"),
    Dimension("product", ("sales",), r"products?"),
    Dimension("day", ("sales", "files"), r"days?|dates?"),
    Dimension("feed", ("files",), r"feeds?"),
    Dimension("status", ("files",), r"status(?:es)?"),
)
STATUSES = r"pending|downloaded|queued|processing|processed|failed|quarantined|duplicate"

# A filter: dimension → patterns whose group `value` is the value; values never hold a quote.
FILTERS: dict[str, tuple[str, ...]] = {
    "seller": (r"(?:of |for |from |by )?seller (?P<value>s\d{4})\b", r"(?:of |for |from |by )?(?P<value>s\d{4})\b"),
    "product": (r"(?:of |for )?product (?P<value>p\d{5})\b", r"(?:of |for )?(?P<value>p\d{5})\b"),
    "feed": (r"(?:in |for |of )?(?:the )?feed (?P<value>[a-z][a-z0-9_]*)\b",
             r"(?:in |for |of )?(?:the )?(?P<value>[a-z][a-z0-9_]*) feed\b"),
    "status": (r"(?:with |in )?status (?P<value>" + STATUSES + r")\b",
               r"(?P<value>" + STATUSES + r")(?= files\b)"),
}
TOP = r"\b(?P<direction>top|bottom|best|worst)(?: (?P<n>\d{1,3}))? (?P<dimension>\w+)"
GROUPS = (r"\b(?:per|by|for each|each|grouped by|group by) (?P<dimension>\w+)", r"\b(?P<daily>daily)\b")
DEFAULT_TOP = 10
FILLER = frozenset({
    "what", "whats", "is", "are", "was", "were", "how", "many", "much", "show", "me", "give", "list", "tell", "the",
    "a", "an", "of", "for", "in", "on", "by", "per", "and", "with", "all", "our", "total", "overall", "number",
    "count", "did", "do", "does", "we", "sell", "sold", "have", "has", "there", "please", "i", "want", "to", "see",
    "which", "who", "each", "had", "get", "find", "sum", "amount", "value", "values", "so", "far", "been",
    "during", "at", "from", "as", "it", "its", "that", "this",
})

Range = tuple[date, date]


def _month(today: date, name: str, year: str | None) -> Range:
    month = MONTHS.index(name[:3]) + 1
    chosen = int(year) if year else (today.year if month <= today.month else today.year - 1)
    return date(chosen, month, 1), date(chosen, month, monthrange(chosen, month)[1])


def _week(today: date, back: int) -> Range:
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
    return monday, monday + timedelta(days=6) if back else today


def _previous_month(today: date) -> Range:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
MONTH = r"(?P<month>january|february|march|april|may|june|july|august|september|october|november|december)"
ISO = r"\d{4}-\d{2}-\d{2}"

# Date ranges in words, first match wins; each resolves to (first day, last day) relative to `today`.
DATES: tuple[tuple[str, Callable[[date, re.Match[str]], Range]], ...] = (
    (rf"\bbetween (?P<a>{ISO}) and (?P<b>{ISO})\b",
     lambda t, m: (date.fromisoformat(m["a"]), date.fromisoformat(m["b"]))),
    (rf"\bfrom (?P<a>{ISO}) to (?P<b>{ISO})\b", lambda t, m: (date.fromisoformat(m["a"]), date.fromisoformat(m["b"]))),
    (rf"\bsince (?P<a>{ISO})\b", lambda t, m: (date.fromisoformat(m["a"]), t)),
    (rf"\bon (?P<a>{ISO})\b", lambda t, m: (date.fromisoformat(m["a"]),) * 2),  # type: ignore[return-value]
    (r"\btoday\b", lambda t, m: (t, t)),
    (r"\byesterday\b", lambda t, m: (t - timedelta(days=1),) * 2),  # type: ignore[return-value]
    (r"\b(?:in the )?(?:last|past) (?P<n>\d{1,3}) days\b", lambda t, m: (t - timedelta(days=int(m["n"]) - 1), t)),
    (r"\b(?:in the )?(?:last|past) (?P<n>\d{1,2}) weeks\b", lambda t, m: (t - timedelta(days=7 * int(m["n"]) - 1), t)),
    (r"\blast week\b", lambda t, m: _week(t, 1)),
    (r"\bthis week\b", lambda t, m: _week(t, 0)),
    (r"\blast month\b", lambda t, m: _previous_month(t)),
    (r"\bthis month\b", lambda t, m: (t.replace(day=1), t)),
    (rf"\b(?:in |during )?{MONTH}(?: (?P<year>\d{{4}}))?\b", lambda t, m: _month(t, m["month"], m["year"])),
    (r"\bthis year\b", lambda t, m: (t.replace(month=1, day=1), t)),
    (r"\blast year\b", lambda t, m: (date(t.year - 1, 1, 1), date(t.year - 1, 12, 31))),
)

EXAMPLES = (
    "top 5 sellers by revenue last week",
    "units of product P00001 per day in November",
    "revenue and transactions of seller S0001 between 2026-11-01 and 2026-11-10",
    "average price per product yesterday",
    "files per status today",
    "failures per feed in the last 7 days",
    "rejected rows of the orders feed per day last month",
)


class NotUnderstood(ValueError):
    """The grammar cannot answer the question; the message says why and shows questions it understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"I can't answer that: {reason}. Questions I understand look like: "
                         + "; ".join(f"“{e}”" for e in EXAMPLES) + ". See docs/ask.md for the whole grammar.")
        self.reason = reason


@dataclass
class Reading:
    """What the grammar understood, and the SQL it makes."""

    metrics: list[Metric] = field(default_factory=list)
    dimension: Dimension | None = None
    top: tuple[str, int] | None = None  # (DESC or ASC, n)
    period: Range | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)

    @property
    def view(self) -> str:
        return self.metrics[0].view

    def sql(self) -> str:
        columns = ([self.dimension.name] if self.dimension else []) + [f"{m.sql} AS {m.name}" for m in self.metrics]
        text = f"SELECT {', '.join(columns)} FROM ask.{self.view}"
        conditions = []
        if self.period:
            first, last = self.period
            conditions.append(f"day BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'")
        for column, values in self.filters.items():
            quoted = ", ".join(f"'{v}'" for v in values)  # values match FILTERS' patterns: no quote can occur
            conditions.append(f"{column} = {quoted}" if len(values) == 1 else f"{column} IN ({quoted})")
        if conditions:
            text += " WHERE " + " AND ".join(conditions)
        if self.dimension:
            text += f" GROUP BY {self.dimension.name}"
            if self.top:
                text += f" ORDER BY {self.metrics[0].name} {self.top[0]} NULLS LAST, {self.dimension.name}"
                text += f" LIMIT {self.top[1]}"
            elif self.dimension.name == "day":
                text += " ORDER BY day"
            else:
                text += f" ORDER BY {self.metrics[0].name} DESC NULLS LAST, {self.dimension.name}"
        return text

    def summary(self) -> str:
        """What was understood, in words, to show next to the answer."""
        parts = [" and ".join(m.name.replace("_", " ") for m in self.metrics)]
        if self.dimension:
            parts.append(f"per {self.dimension.name}")
        if self.top:
            parts.append(f"{'top' if self.top[0] == 'DESC' else 'bottom'} {self.top[1]}")
        for column, values in self.filters.items():
            parts.append(f"{column} {' or '.join(values)}")
        if self.period:
            first, last = self.period
            parts.append(f"on {first}" if first == last else f"from {first} to {last}")
        return ", ".join(parts)


def _dimension(word: str) -> Dimension | None:
    return next((d for d in DIMENSIONS if re.fullmatch(d.words, word)), None)


def _cut(text: str, match: re.Match[str]) -> str:
    return text[:match.start()] + " " + text[match.end():]


def read(question: str, today: date) -> Reading:
    """The question's meaning, or NotUnderstood saying what is missing or left over."""
    text = " " + re.sub(r"[?!,;:.]+(?=\s|$)", " ", question.lower()).replace("\u2019", "'") + " "
    text = re.sub(r"\s+", " ", text)
    reading = Reading()
    for pattern, resolve in DATES:
        match = re.search(pattern, text)
        if match:
            reading.period = resolve(today, match)
            text = _cut(text, match)
            break
    for column, patterns in FILTERS.items():
        for pattern in patterns:
            while match := re.search(r"(?<![\w-])" + pattern, text):
                value = match["value"]
                if column == "feed" and (_dimension(value) or value in FILLER):
                    break  # "per feed", "each feed": a group-by, not a feed's name
                reading.filters.setdefault(column, []).append(value.upper() if column in ("seller", "product")
                                                              else value)
                text = _cut(text, match)
    if match := re.search(TOP, text):
        dimension = _dimension(match["dimension"])
        if dimension is None:
            raise NotUnderstood(f"“{match.group(0).strip()}”: top of what? (sellers, products, days, feeds or "
                                "statuses)")
        reading.dimension = dimension
        reading.top = ("ASC" if match["direction"] in ("bottom", "worst") else "DESC",
                       int(match["n"] or DEFAULT_TOP))
        text = _cut(text, match)
    for pattern in GROUPS:
        position = 0
        while match := re.compile(pattern).search(text, position):
            dimension = _dimension("day") if match.groupdict().get("daily") else _dimension(match["dimension"])
            if dimension is None:  # "by revenue" after a top-N: the metric pass takes it
                position = match.end()
                continue
            if reading.dimension and reading.dimension != dimension:
                raise NotUnderstood(f"one grouping at a time (got {reading.dimension.name} and {dimension.name})")
            reading.dimension = dimension
            text = _cut(text, match)
            position = match.start()
    found: dict[Metric, int] = {}  # metric → where it was first named: answer columns in the question's order
    for metric in METRICS:
        while match := re.search(rf"\b(?:{metric.words})\b", text):
            found.setdefault(metric, match.start())
            text = _cut(text, match)  # one character for the span: the positions found keep their order
    reading.metrics = sorted(found, key=found.__getitem__)
    leftover = [w for w in re.findall(r"[\w'-]+", text) if w not in FILLER]
    if leftover:
        raise NotUnderstood(f"I do not know the word{'s' if len(leftover) > 1 else ''} "
                            f"{', '.join(repr(w) for w in leftover)}")
    if not reading.metrics:
        raise NotUnderstood("name what to measure: revenue, units, transactions, average price (sales) or files, "
                            "rows, rejected rows, failures (files)")
    views = {m.view for m in reading.metrics}
    if len(views) > 1:
        raise NotUnderstood("sales metrics and file metrics cannot be mixed in one question")
    view = reading.view
    wrong = [name for name in ([reading.dimension.name] if reading.dimension else []) + list(reading.filters)
             if view not in next(d.views for d in DIMENSIONS if d.name == name)]
    if wrong:
        raise NotUnderstood(f"{' and '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to "
                            f"{view} metrics ({', '.join(m.name for m in reading.metrics)})")
    if reading.period and reading.period[0] > reading.period[1]:
        raise NotUnderstood(f"the range starts ({reading.period[0]}) after it ends ({reading.period[1]})")
    return reading
