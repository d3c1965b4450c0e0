"""Five-field cron expressions (minute hour day-of-month month day-of-week) over local wall-clock times.

Written here rather than taken from croniter: contracts are validated wherever they load, the Lambda bundle too,
which carries no croniter; and slot times need wall-clock semantics that this module makes explicit (the
caller turns each local time into an instant in the feed's time zone, see filegate.schedule.slots).

Supported: `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, month and weekday names (jan, mon),
weekday 0 or 7 for Sunday. As in Vixie cron, when both day-of-month and day-of-week are restricted a day matches
if either does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, lowest, highest, names mapped to numbers
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, {n: i + 1 for i, n in enumerate(MONTHS)}),
           ("day of week", 0, 7, {n: i for i, n in enumerate(DAYS)}))


class CronError(ValueError):
    """An expression that is not valid five-field cron; the message names the field and the part."""


def _number(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise CronError(f"{field}: {text!r} is not a value from {low} to {high}")
    return value


def _parse_field(text: str, low: int, high: int, names: dict[str, int], field: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{field}: step {step_text!r} in {part!r} is not a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = (_number(first, low, high, names, field), _number(last, low, high, names, field))
            if start > end:
                raise CronError(f"{field}: range {base!r} runs backwards")
        else:
            start = _number(base, low, high, names, field)
            end = high if step_text else start  # `5/15` means from 5 on, every 15
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, like cron
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(f"{expression!r} has {len(parts)} fields; cron here has 5: minute hour day-of-month "
                            "month day-of-week (e.g. '0 6 * * 1-5')")
        sets = [_parse_field(text, low, high, names, field)
                for text, (field, low, high, names) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def times_on(self, day: date) -> Iterator[datetime]:
        """The naive local wall-clock times of `day` the expression names, in order."""
        if not self.matches_day(day):
            return
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                yield datetime.combine(day, time(hour, minute))
