"""Delivery slots, computed from a feed's `expect:` block without I/O: when they are, which file belongs to which
slot, and what state a slot is in at a given moment.

Time zones: slot times are local wall-clock times in `expect.timezone`. A time that does not exist (the hour
skipped when clocks go forward) becomes the same wall-clock distance after the change (01:30 → 02:30 in
London), the way cron daemons run it once; a time that happens twice (clocks go back) is its first occurrence.
Every slot is an instant (UTC) once computed, so two wall-clock times landing on one instant are one slot.

Which slot a file satisfies: with a `{slot:<strftime>}` placeholder in the pattern, the slot its name names
(nearest to its arrival when several would); without one, the slot whose time is nearest to its arrival, if the
name matches the pattern. So a file 4 hours after a daily 06:00 slot is that slot's (late) file, one at 05:00 the
next day is the next slot's.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from filegate.contracts.model import WEEKDAYS, Expect
from filegate.cron import Cron

PLACEHOLDER = re.compile(r"\{slot:([^}]*)\}")
SEARCH_DAYS = 400  # how far to look for a neighbouring slot: a yearly cron still finds one
NAMED_SLOT_DAYS = 8  # a file naming its slot is looked for in slots this many days around its arrival


class SlotState(StrEnum):
    EXPECTED = "expected"  # not yet due, or due and within its grace period
    ARRIVED = "arrived"  # its files came by the slot time plus grace
    LATE = "late"  # its files came after the grace period (the delay is recorded)
    MISSED = "missed"  # the grace period is over and its files have not all come


@dataclass(frozen=True)
class Slot:
    feed: str
    expected_at: datetime  # UTC
    deadline_at: datetime  # expected_at + grace
    local_day: date  # the day of the slot in the feed's time zone: the calendar's column
    pattern: str  # the file-name glob of this slot, placeholder resolved
    files: int  # arrivals needed


@functools.lru_cache(maxsize=256)
def _cron(expression: str) -> Cron:
    return Cron.parse(expression)


def _zone(expect: Expect) -> ZoneInfo:
    return ZoneInfo(expect.timezone)


def _local_times(expect: Expect, day: date) -> Iterator[datetime]:
    """Naive local wall-clock times of the slots on `day`."""
    if day in expect.holidays:
        return
    if expect.cron is not None:
        yield from _cron(expect.cron).times_on(day)
        return
    calendar = expect.business_days
    assert calendar is not None  # the contract requires cron or business_days
    if WEEKDAYS[day.weekday()] in calendar.weekdays:
        for text in calendar.at:
            hour, minute = (int(x) for x in text.split(":"))
            yield datetime(day.year, day.month, day.day, hour, minute)


def to_instant(naive_local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time: fold=0 takes the first of a repeated time, and a skipped
    time is read with the offset before the change, which lands that far after it."""
    return naive_local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def resolve_pattern(pattern: str, local: datetime) -> str:
    return PLACEHOLDER.sub(lambda m: local.strftime(m.group(1)), pattern)


def _slot(feed: str, expect: Expect, source_pattern: str, naive_local: datetime, zone: ZoneInfo) -> Slot:
    instant = to_instant(naive_local, zone)
    return Slot(feed=feed, expected_at=instant, deadline_at=instant + timedelta(minutes=expect.grace_minutes),
                local_day=naive_local.date(), pattern=resolve_pattern(expect.pattern or source_pattern, naive_local),
                files=expect.files)


def _days(first: date, last: date, step: int = 1) -> Iterator[date]:
    day = first
    while (day <= last) if step > 0 else (day >= last):
        yield day
        day += timedelta(days=step)


def slots_between(feed: str, expect: Expect, source_pattern: str, start: datetime, end: datetime) -> list[Slot]:
    """The slots whose time is in [start, end) (aware datetimes), in time order."""
    zone = _zone(expect)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found: dict[datetime, Slot] = {}
    for day in _days(first, last):
        for naive in _local_times(expect, day):
            slot = _slot(feed, expect, source_pattern, naive, zone)
            if start <= slot.expected_at < end:
                found.setdefault(slot.expected_at, slot)
    return [found[t] for t in sorted(found)]


def _neighbour(feed: str, expect: Expect, source_pattern: str, at: datetime, *, after: bool) -> Slot | None:
    """The first slot strictly after `at` (after=True), or the last one at or before it."""
    zone = _zone(expect)
    local_day = at.astimezone(zone).date()
    step = 1 if after else -1
    for offset_start in range(0, SEARCH_DAYS, 7):
        window_days = [local_day + timedelta(days=step * (offset_start + n)) for n in range(-1, 8)]
        candidates = [_slot(feed, expect, source_pattern, naive, zone)
                      for day in window_days for naive in _local_times(expect, day)]
        if after:
            later = [s for s in candidates if s.expected_at > at]
            if later:
                return min(later, key=lambda s: s.expected_at)
        else:
            earlier = [s for s in candidates if s.expected_at <= at]
            if earlier:
                return max(earlier, key=lambda s: s.expected_at)
    return None


def slot_for(feed: str, expect: Expect, source_pattern: str, name: str, arrived_at: datetime) -> Slot | None:
    """The slot a file named `name` that arrived at `arrived_at` counts for, or None (see the module docs)."""
    pattern = expect.pattern or source_pattern
    if PLACEHOLDER.search(pattern):
        window = timedelta(days=NAMED_SLOT_DAYS)
        named = [s for s in slots_between(feed, expect, source_pattern, arrived_at - window, arrived_at + window)
                 if fnmatch.fnmatchcase(name, s.pattern)]
        return min(named, key=lambda s: (abs(s.expected_at - arrived_at), s.expected_at), default=None)
    before = _neighbour(feed, expect, source_pattern, arrived_at, after=False)
    after = _neighbour(feed, expect, source_pattern, arrived_at, after=True)
    nearest = [s for s in (before, after) if s is not None]
    if not nearest:
        return None
    slot = min(nearest, key=lambda s: (abs(s.expected_at - arrived_at), s.expected_at))
    return slot if fnmatch.fnmatchcase(name, slot.pattern) else None


@dataclass(frozen=True)
class Evaluation:
    state: SlotState
    satisfied_at: datetime | None = None  # when the last needed file came
    delay_seconds: int | None = None  # satisfied_at - slot time, when positive


def evaluate(*, expected_at: datetime, deadline_at: datetime, files: int, arrivals: Sequence[datetime],
             now: datetime) -> Evaluation:
    """A slot's state at `now` given its files' arrival times. Late files of a `missed` slot make it `late`."""
    ordered = sorted(arrivals)
    if len(ordered) >= files:
        satisfied_at = ordered[files - 1]
        delay = max(int((satisfied_at - expected_at).total_seconds()), 0) or None
        state = SlotState.ARRIVED if satisfied_at <= deadline_at else SlotState.LATE
        return Evaluation(state, satisfied_at, delay)
    return Evaluation(SlotState.MISSED if now > deadline_at else SlotState.EXPECTED)
