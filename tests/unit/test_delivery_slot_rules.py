"""Expected deliveries: cron parsing, slot times (business days, holidays, time zones, DST), which slot a file
counts for, and a slot's state."""

from __future__ import annotations

import fnmatch
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from filegate.contracts.model import Expect
from filegate.cron import Cron, CronError
from filegate.schedule.slots import SlotState, evaluate, slot_for, slots_between


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def expect(**kwargs: object) -> Expect:
    return Expect.model_validate(kwargs)


def times(exp: Expect, start: datetime, end: datetime, pattern: str = "*") -> list[str]:
    return [s.expected_at.strftime("%Y-%m-%d %H:%M") for s in slots_between("f", exp, pattern, start, end)]


# -- cron ---------------------------------------------------------------------------------------------------------

def test_cron_fields_lists_ranges_steps_and_names() -> None:
    cron = Cron.parse("5,35 6-8/2 * jan-mar mon-fri")
    assert cron.minutes == {5, 35} and cron.hours == {6, 8} and cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert Cron.parse("*/20 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert Cron.parse("10/20 * * * *").minutes == {10, 30, 50}


def test_cron_day_of_month_or_weekday_when_both_restricted() -> None:
    cron = Cron.parse("0 6 1 * mon")  # the 1st, and every Monday (Vixie cron)
    assert cron.matches_day(date(2026, 12, 1))  # a Tuesday, the 1st
    assert cron.matches_day(date(2026, 12, 7))  # a Monday
    assert not cron.matches_day(date(2026, 12, 8))


@pytest.mark.parametrize(("text", "message"), [
    ("0 6 * *", "has 4 fields"), ("60 6 * * *", "minute: '60'"), ("0 6 * * fr", "day of week: 'fr'"),
    ("0 9-6 * * *", "runs backwards"), ("*/0 * * * *", "step '0'"),
])
def test_cron_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Cron.parse(text)


def test_contract_refuses_a_bad_expect_with_a_reason() -> None:
    with pytest.raises(ValidationError, match=r"exactly one of expect\.cron or expect\.business_days"):
        expect(timezone="UTC")
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        expect(cron="0 6 * * *", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="hour: '25'"):
        expect(cron="0 25 * * *")
    with pytest.raises(ValidationError, match="not a local time HH:MM"):
        expect(business_days={"at": ["6am"]})


# -- slot times ---------------------------------------------------------------------------------------------------

def test_business_days_skip_weekends_and_holidays_in_local_time() -> None:
    exp = expect(business_days={"at": ["06:30"]}, timezone="Europe/Berlin", holidays=["2026-12-25"])
    # Thu 24 Dec .. Tue 29 Dec 2026: Fri 25 is a holiday, 26/27 a weekend; 06:30 CET is 05:30 UTC
    assert times(exp, utc(2026, 12, 24), utc(2026, 12, 30)) == [
        "2026-12-24 05:30", "2026-12-28 05:30", "2026-12-29 05:30"]


def test_cron_slots_follow_summer_time() -> None:
    exp = expect(cron="0 6 * * *", timezone="Europe/London")
    assert times(exp, utc(2026, 3, 28), utc(2026, 3, 30)) == ["2026-03-28 06:00", "2026-03-29 05:00"]
    assert times(exp, utc(2026, 10, 24), utc(2026, 10, 26)) == ["2026-10-24 05:00", "2026-10-25 06:00"]


def test_a_skipped_local_time_runs_after_the_change_and_a_repeated_one_once() -> None:
    # London, 29 Mar 2026: 01:00 GMT jumps to 02:00 BST, so 01:30 does not exist: it is read as 02:30 BST.
    spring = expect(cron="30 1 * * *", timezone="Europe/London")
    [slot] = slots_between("f", spring, "*", utc(2026, 3, 29), utc(2026, 3, 30))
    assert slot.expected_at == utc(2026, 3, 29, 1, 30) and slot.local_day == date(2026, 3, 29)
    # 25 Oct 2026: 01:30 happens twice (BST, then GMT): one slot, at the first.
    autumn = expect(cron="30 1 * * *", timezone="Europe/London")
    assert times(autumn, utc(2026, 10, 25), utc(2026, 10, 26)) == ["2026-10-25 00:30"]
    # Every 30 minutes across the spring gap: no instant twice.
    half_hourly = expect(cron="*/30 0-3 * * *", timezone="Europe/London")
    got = times(half_hourly, utc(2026, 3, 29), utc(2026, 3, 29, 4))
    assert len(got) == len(set(got)) == 6


def test_local_day_is_the_feeds_day_not_utcs() -> None:
    exp = expect(cron="0 23 * * *", timezone="America/New_York")
    [slot] = slots_between("f", exp, "*", utc(2026, 12, 4), utc(2026, 12, 5))
    assert slot.expected_at == utc(2026, 12, 4, 4) and slot.local_day == date(2026, 12, 3)


def test_the_slot_pattern_names_its_local_date() -> None:
    exp = expect(cron="0 6 * * *", timezone="Asia/Tokyo", pattern="orders_{slot:%Y%m%d}_*.csv")
    [slot] = slots_between("f", exp, "*.csv", utc(2026, 12, 3), utc(2026, 12, 4))
    assert slot.pattern == "orders_20261204_*.csv"  # 06:00 in Tokyo on the 4th is 21:00 UTC on the 3rd


# -- which slot a file counts for ------------------------------------------------------------------------------

DAILY = expect(cron="0 6 * * *", timezone="UTC", grace_minutes=60)


@pytest.mark.parametrize(("arrived", "slot_day"), [
    (utc(2026, 12, 3, 5, 30), 3),  # before the slot time: on time
    (utc(2026, 12, 3, 10, 0), 3),  # 4 h after: that slot's late file
    (utc(2026, 12, 4, 5, 0), 4),  # the next morning: the next slot's
])
def test_a_file_counts_for_the_nearest_slot(arrived: datetime, slot_day: int) -> None:
    slot = slot_for("f", DAILY, "*.csv", "orders.csv", arrived)
    assert slot is not None and slot.expected_at == utc(2026, 12, slot_day, 6)


def test_a_file_that_does_not_match_counts_for_no_slot() -> None:
    assert slot_for("f", DAILY, "*.csv", "orders.txt", utc(2026, 12, 3, 5)) is None
    exp = expect(cron="0 6 * * *", pattern="orders_*.csv")
    assert slot_for("f", exp, "*", "returns_1.csv", utc(2026, 12, 3, 5)) is None


def test_a_file_naming_its_slot_counts_for_that_slot_whenever_it_comes() -> None:
    exp = expect(cron="0 6 * * *", pattern="orders_{slot:%Y-%m-%d}.csv")
    slot = slot_for("f", exp, "*", "orders_2026-12-01.csv", utc(2026, 12, 3, 5))  # two days late
    assert slot is not None and slot.expected_at == utc(2026, 12, 1, 6)
    assert slot_for("f", exp, "*", "orders_2025-01-01.csv", utc(2026, 12, 3, 5)) is None


def test_weekly_slot_is_found_across_days_without_slots() -> None:
    weekly = expect(cron="0 6 * * mon")
    slot = slot_for("f", weekly, "*", "a.csv", utc(2026, 12, 9, 12))  # Wednesday: Monday's is nearer
    assert slot is not None and slot.expected_at == utc(2026, 12, 7, 6)


# -- state ---------------------------------------------------------------------------------------------------------

T = utc(2026, 12, 3, 6)
D = T + timedelta(hours=1)


def test_state_expected_until_the_grace_ends_then_missed() -> None:
    assert evaluate(expected_at=T, deadline_at=D, files=1, arrivals=[], now=T + timedelta(minutes=30)).state \
        == SlotState.EXPECTED
    assert evaluate(expected_at=T, deadline_at=D, files=1, arrivals=[], now=D + timedelta(seconds=1)).state \
        == SlotState.MISSED


def test_state_arrived_needs_every_file_by_the_deadline() -> None:
    early = T - timedelta(minutes=10)
    one = evaluate(expected_at=T, deadline_at=D, files=2, arrivals=[early], now=T)
    assert one.state == SlotState.EXPECTED
    both = evaluate(expected_at=T, deadline_at=D, files=2, arrivals=[T + timedelta(minutes=20), early], now=T)
    assert both == evaluate(expected_at=T, deadline_at=D, files=2, arrivals=[early, T + timedelta(minutes=20)],
                            now=D + timedelta(days=1))
    assert both.state == SlotState.ARRIVED and both.satisfied_at == T + timedelta(minutes=20)
    assert both.delay_seconds == 20 * 60


def test_files_after_the_grace_make_a_missed_slot_late_with_the_delay() -> None:
    came = T + timedelta(hours=3, minutes=5)
    result = evaluate(expected_at=T, deadline_at=D, files=1, arrivals=[came], now=came + timedelta(minutes=1))
    assert result.state == SlotState.LATE and result.delay_seconds == (3 * 60 + 5) * 60


def test_the_make_run_sample_feed_misses_a_slot_in_any_week() -> None:
    """`make run` checks that stock_levels has a missed slot in the last week (include/samples/expected.yaml):
    true on any day of the year, since no sample file is its closing count."""
    from pathlib import Path

    from filegate.contracts.loader import get_contract

    contract = get_contract("stock_levels")
    assert contract.expect is not None
    samples = [p.name for p in (Path(__file__).resolve().parents[2] / "include" / "samples" / "stock_levels").iterdir()]
    for n in range(0, 400, 3):
        now = utc(2026, 12, 1, 5) + timedelta(days=n, hours=n % 24)
        week = slots_between(contract.name, contract.expect, contract.source.pattern, now - timedelta(days=7), now)
        past_due = [s for s in week if s.deadline_at < now]
        assert past_due, f"no slot past its deadline in the week before {now}"
        assert not any(fnmatch.fnmatchcase(name, s.pattern) for s in week for name in samples)
