"""bench/figures.py: the rows of `make bench`'s table. A reader trusts the verdict column without redoing the
arithmetic, so the ratio, met/missed and the "missed by how much" text must follow the goal's own terms."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from figures import Figure, median_of, render_markdown, render_text


def time_figure(value: float, floor: float, limit: float = 1.5) -> Figure:
    return Figure(name="engine, 1 M rows", value=value, unit="s", goal="ratio<=", limit=limit, floor=floor,
                  floor_label="pyarrow read_csv")


def test_a_time_goal_compares_the_ratio_to_the_floor() -> None:
    met = time_figure(1.2, 1.0)
    assert met.ratio == pytest.approx(1.2)
    assert met.met and met.verdict() == "met"
    assert met.goal_text() == "≤ 1.5x the floor"

    missed = time_figure(3.0, 1.0)
    assert not missed.met
    assert missed.verdict() == "missed: 3.00x, 2.00x the goal's 1.5x"


def test_the_limit_itself_meets_the_goal() -> None:
    assert time_figure(1.5, 1.0).met
    assert not time_figure(1.51, 1.0).met


def test_a_rate_goal_is_a_share_of_the_floor() -> None:
    rate = Figure(name="delivery", value=40_000, unit="records/s", goal="ratio>=", limit=0.5, floor=100_000)
    assert rate.goal_text() == "≥ 50% of the floor"
    assert not rate.met
    assert rate.verdict() == "missed: 40% of the floor, 10% short"
    assert Figure(name="delivery", value=60_000, unit="records/s", goal="ratio>=", limit=0.5, floor=100_000).met


def test_excess_and_absolute_goals_say_by_how_much_in_the_unit() -> None:
    memory = Figure(name="rss", value=230.0, unit="MB", goal="excess<=", limit=100.0, floor=100.0)
    assert memory.compared == pytest.approx(130.0)
    assert memory.goal_text() == "≤ 100 MB above the floor"
    assert memory.verdict() == "missed by 30 MB"

    reads = Figure(name="GetObject", value=2.0, unit="GetObject", goal="value<=", limit=1.0)
    assert reads.ratio is None
    assert reads.verdict() == "missed by 1 GetObject"

    rate = Figure(name="burst", value=800.0, unit="files/min", goal="value>=", limit=1000.0, floor=2000.0)
    assert rate.verdict() == "missed by 200 files/min"
    assert rate.ratio == pytest.approx(0.4)  # a value goal may still show its floor


def test_a_ratio_goal_without_a_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a floor"):
        Figure(name="x", value=1.0, unit="s", goal="ratio<=", limit=1.5)
    with pytest.raises(ValueError, match="is none of"):
        Figure(name="x", value=1.0, unit="s", goal="faster", limit=1.5)


def test_a_zero_floor_misses_a_ratio_goal_instead_of_dividing_by_zero() -> None:
    broken = time_figure(1.0, 0.0)
    assert broken.ratio is None
    assert not broken.met


def test_median_of_rounds_notes_every_round() -> None:
    value, note = median_of([3.0, 1.0, 2.0])
    assert value == 2.0
    assert note == "median of 3: 3, 1, 2"


def test_tables_show_value_floor_ratio_goal_and_verdict() -> None:
    rows = [time_figure(3.0, 1.0),
            Figure(name="GetObject calls", value=1.0, unit="GetObject", goal="value<=", limit=1.0)]
    text = render_text(rows).splitlines()
    assert text[0].split()[:5] == ["figure", "value", "floor", "ratio", "goal"]
    assert "3 s" in text[2] and "1 s" in text[2] and "3.00x" in text[2] and "missed: 3.00x" in text[2]
    assert text[3].split("GetObject calls")[1].split()[:4] == ["1", "GetObject", "—", "—"]

    markdown = render_markdown(rows).splitlines()
    assert markdown[0] == "| figure | value | floor (same run) | ratio | goal | verdict |"
    assert markdown[2] == ("| engine, 1 M rows | 3 s | 1 s (pyarrow read_csv) | 3.00x | ≤ 1.5x the floor | "
                           "missed: 3.00x, 2.00x the goal's 1.5x |")
    assert markdown[3] == "| GetObject calls | 1 GetObject | — | — | ≤ 1 GetObject | met |"


def test_large_values_get_thousands_separators() -> None:
    row = Figure(name="delivery", value=56_602.4, unit="records/s", goal="ratio>=", limit=0.5, floor=71_166.0)
    assert "| 56,602 records/s | 71,166 records/s | 0.80x |" in render_markdown([row])
