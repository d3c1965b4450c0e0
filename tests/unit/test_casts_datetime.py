"""A datetime column without a format reads through Arrow's ISO 8601 parser when every value has a format's
length: that fast path must accept exactly the values (and give exactly the instants) of the strptime path with
its round trip, which stays the reference."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column
from filegate.validation.casts import DATETIME_FORMATS, _parse_times, cast_datetime

DATETIME = Column(name="at", type="datetime")


def _reference(values: list[str]) -> tuple[list[int | None], list[bool]]:
    typed, invalid = _parse_times(pa.array(values, pa.string()), DATETIME_FORMATS, pa.timestamp("us"))
    return pc.cast(typed, pa.int64()).to_pylist(), invalid.to_pylist()


def _fast(values: list[str]) -> tuple[list[int | None], list[bool]]:
    typed, invalid = cast_datetime(pa.array(values, pa.string()), DATETIME)
    return pc.cast(typed, pa.int64()).to_pylist(), invalid.to_pylist()


def _near_iso(rnd: random.Random) -> str:
    """A text of one of the formats' shapes, often with one character changed: impossible days and times,
    other separators, a zone, a fraction, a missing digit, padding."""
    year = rnd.choice(["2026", "2024", "1900", "2000", "0001", "9999", "0000", "2100"])
    text = (f"{year}-{rnd.randrange(0, 14):02d}-{rnd.randrange(0, 33):02d}"
            f"{rnd.choice(['T', ' '])}{rnd.randrange(0, 26):02d}:{rnd.randrange(0, 62):02d}:{rnd.randrange(0, 62):02d}")
    text = text[:rnd.choice([10, 13, 16, 19, 19, 19])]
    if rnd.random() < 0.4:
        where = rnd.randrange(len(text) + 1)
        change = rnd.choice(["", "0", "9", "Z", "z", "+", "-", ":", ".", " ", "t", "T", "/", "\u00a0", "٣"])
        text = text[:where] + change + text[where + rnd.choice([0, 1]):]
    if rnd.random() < 0.05:
        text = text + rnd.choice([".5", "Z", "+01:00", " "])
    return text


def test_fast_path_accepts_what_strptime_with_round_trip_accepts() -> None:
    rnd = random.Random(20261203)
    texts = sorted({_near_iso(rnd) for _ in range(1500)})
    instants, invalid = _reference(texts)  # the reference judges each value on its own
    assert 0.2 < sum(invalid) / len(texts) < 0.8  # both sides of the line are tried
    for text, instant, bad in zip(texts, instants, invalid, strict=True):
        # One value at a time: a batch with one bad value leaves the fast path for all of it.
        assert _fast([text]) == ([instant], [bad]), text


def test_fast_path_reads_a_clean_batch_with_blanks_like_the_reference() -> None:
    values = ["2026-11-21 13:45:12", "", "2024-02-29T00:00:00", "2026-11-21", "2026-11-21 13:45"]
    assert _fast(values) == _reference(values)
    assert _fast(values)[1] == [False] * len(values)


def test_an_impossible_day_is_invalid_not_moved_to_march() -> None:
    assert _fast(["2026-02-28 10:00:00", "2026-02-30 10:00:00"]) == ([1772272800000000, None], [False, True])
