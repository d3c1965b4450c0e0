"""A row of `make bench`'s table: one figure, the floor it is compared with (measured in the same run), the
ratio between them and the goal, met or missed by how much. Each bench_*.py module's main() returns a list."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

# How a goal compares the figure with its floor (or, with no floor, with the limit itself).
GOAL_KINDS = {
    "ratio<=": "≤ {limit:g}x the floor",      # times: the figure over the floor
    "ratio>=": "≥ {limit:.0%} of the floor",  # rates: the figure over the floor
    "excess<=": "≤ {limit:g} {unit} above the floor",
    "value<=": "≤ {limit:g} {unit}",
    "value>=": "≥ {limit:g} {unit}",
}


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    goal: str  # a key of GOAL_KINDS
    limit: float
    floor: float | None = None
    floor_label: str = ""  # what the floor is, in a few words
    note: str = ""  # e.g. the rounds the medians come from

    def __post_init__(self) -> None:
        if self.goal not in GOAL_KINDS:
            raise ValueError(f"{self.name}: goal {self.goal!r} is none of {sorted(GOAL_KINDS)}")
        if self.goal.startswith(("ratio", "excess")) and self.floor is None:
            raise ValueError(f"{self.name}: goal {self.goal} needs a floor")

    @property
    def ratio(self) -> float | None:
        return self.value / self.floor if self.floor else None

    @property
    def compared(self) -> float:
        """The number the goal's limit applies to."""
        if self.goal.startswith("ratio"):
            return self.ratio if self.ratio is not None else float("inf")
        if self.goal.startswith("excess"):
            return self.value - (self.floor or 0.0)
        return self.value

    @property
    def met(self) -> bool:
        return self.compared <= self.limit if self.goal.endswith("<=") else self.compared >= self.limit

    def goal_text(self) -> str:
        return GOAL_KINDS[self.goal].format(limit=self.limit, unit=self.unit)

    def verdict(self) -> str:
        if self.met:
            return "met"
        if self.goal == "ratio<=":
            return f"missed: {self.compared:.2f}x, {self.compared / self.limit:.2f}x the goal's {self.limit:g}x"
        if self.goal == "ratio>=":
            return f"missed: {self.compared:.0%} of the floor, {self.limit - self.compared:.0%} short"
        return f"missed by {abs(self.compared - self.limit):.3g} {self.unit}"

    def as_row(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met, "goal_text": self.goal_text(),
                "verdict": self.verdict()}


def median_of(rounds: Iterable[float]) -> tuple[float, str]:
    """The median of interleaved rounds and a note listing them, so a reader sees the spread."""
    values = list(rounds)
    return statistics.median(values), f"median of {len(values)}: " + ", ".join(f"{v:.3g}" for v in values)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if abs(value) >= 10_000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def render_text(figures: list[Figure]) -> str:
    header = f"{'figure':<58} {'value':>16} {'floor':>16} {'ratio':>7}  {'goal':<28} verdict"
    lines = [header, "-" * len(header)]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "—"
        lines.append(f"{f.name[:58]:<58} {fmt(f.value, f.unit):>16} {fmt(f.floor, f.unit):>16} {ratio:>7}  "
                     f"{f.goal_text():<28} {f.verdict()}")
    return "\n".join(lines)


def render_markdown(figures: list[Figure]) -> str:
    lines = ["| figure | value | floor (same run) | ratio | goal | verdict |", "|---|---|---|---|---|---|"]
    for f in figures:
        floor = fmt(f.floor, f.unit) + (f" ({f.floor_label})" if f.floor_label else "")
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "—"
        lines.append(f"| {f.name} | {fmt(f.value, f.unit)} | {floor} | {ratio} | {f.goal_text()} | {f.verdict()} |")
    return "\n".join(lines)
