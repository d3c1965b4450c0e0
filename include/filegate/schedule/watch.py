"""Keeps the status store's delivery slots current and announces the late and missed ones.

`watch` runs every few minutes (the `watch_deliveries` DAG): it records the slots of every feed with an
`expect:` block from a week back to two days ahead, counts each new file for its slot, re-evaluates the slots
still open, and publishes one alert per slot that turned `late` or `missed`. `note_arrivals` is the same
counting for files just registered, so that a late file turns its slot `late` at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from filegate.alerts.messages import Alert, delivery_slot
from filegate.contracts.model import Contract
from filegate.schedule.slots import Slot, SlotState, evaluate, slot_for, slots_between
from filegate.status.store import StatusStore

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=7)  # slots recorded this far back; older files are not matched any more
HORIZON = timedelta(days=2)  # upcoming slots shown on the calendar as `expected`
# A slot already missed when first seen longer ago than this (a feed's first watch, a long outage) is recorded
# without an alert: a week of missed slots in one burst helps no one on call.
ALERT_MAX_AGE = timedelta(hours=24)


@dataclass
class WatchReport:
    slots_added: int = 0
    files_counted: int = 0
    changes: list[str] = field(default_factory=list)  # "orders 2026-12-03T06:00+00:00: expected → missed"
    alerts_sent: int = 0
    alerts_skipped: int = 0


def slot_row(slot: Slot) -> dict[str, Any]:
    return {"feed": slot.feed, "expected_at": slot.expected_at, "deadline_at": slot.deadline_at,
            "local_day": slot.local_day, "pattern": slot.pattern, "files_expected": slot.files}


def count_files(store: StatusStore, contract: Contract, *, now: datetime,
                file_ids: Sequence[int] | None = None) -> int:
    """Counts the feed's files registered since LOOKBACK that count for no slot yet; returns how many now do."""
    expect = contract.expect
    if expect is None:
        return 0
    counted = 0
    for file in store.slots.unmatched_files(contract.name, now - LOOKBACK, file_ids):
        slot = slot_for(contract.name, expect, contract.source.pattern, file["name"], file["created_at"])
        if slot is not None and store.slots.attach(slot_row(slot), file["id"], file["created_at"]):
            counted += 1
    return counted


def reevaluate(store: StatusStore, contract: Contract, *, now: datetime) -> list[str]:
    """Updates the state of the feed's open slots; returns the changes, for the task log."""
    changes = []
    for row in store.slots.open_slots(contract.name):
        result = evaluate(expected_at=row["expected_at"], deadline_at=row["deadline_at"],
                          files=row["files_expected"], arrivals=row["arrivals"], now=now)
        if result.state != row["state"]:
            store.slots.set_state(row["id"], result.state, satisfied_at=result.satisfied_at,
                                  delay_seconds=result.delay_seconds)
            changes.append(f"{contract.name} {row['expected_at'].isoformat()}: {row['state']} → {result.state}")
    return changes


def note_arrivals(store: StatusStore, contract: Contract, file_ids: Iterable[int]) -> None:
    """Right after registering files: counts them for their slots. Never fails the registration."""
    ids = list(file_ids)
    if contract.expect is None or not ids:
        return
    try:
        now = datetime.now(UTC)
        if count_files(store, contract, now=now, file_ids=ids):
            for change in reevaluate(store, contract, now=now):
                log.info("delivery slot %s", change)
    except Exception:  # the watch counts them on its next run
        log.warning("could not count files %s for %s's delivery slots", ids, contract.name, exc_info=True)


def local_time(row: dict[str, Any], timezone: str) -> str:
    local = row["expected_at"].astimezone(ZoneInfo(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def announce(store: StatusStore, contracts: dict[str, Contract], publish: Callable[[Alert], bool], *,
             now: datetime, calendar_url: str | None = None) -> tuple[int, int]:
    """One alert per slot of `contracts` whose `late` or `missed` state is not announced yet; (sent, skipped).
    A feed whose contract lost its `expect:` block is not watched any more, so its old slots stay quiet."""
    sent = skipped = 0
    for row in store.slots.unannounced(contracts):
        contract = contracts.get(row["feed"])
        timezone = contract.expect.timezone if contract and contract.expect else "UTC"
        if row["state"] == SlotState.MISSED and row["deadline_at"] < now - ALERT_MAX_AGE:
            log.info("slot %s of %s was missed before the watch saw it; recorded without an alert",
                     row["expected_at"], row["feed"])
            store.slots.mark_announced(row["id"], row["state"])
            skipped += 1
            continue
        alert = delivery_slot(row, local_time=local_time(row, timezone), calendar_url=calendar_url)
        if publish(alert):
            store.slots.mark_announced(row["id"], row["state"])
            sent += 1
        else:  # kept unannounced: the next watch tries again
            log.warning("alert for %s slot %s not sent; will retry", row["feed"], row["expected_at"])
    return sent, skipped


def watch(store: StatusStore, contracts: Iterable[Contract], publish: Callable[[Alert], bool], *,
          now: datetime | None = None, calendar_url: str | None = None) -> WatchReport:
    now = now or datetime.now(UTC)
    watched = {c.name: c for c in contracts if c.expect is not None}
    report = WatchReport()
    for contract in watched.values():
        assert contract.expect is not None
        slots = slots_between(contract.name, contract.expect, contract.source.pattern, now - LOOKBACK, now + HORIZON)
        report.slots_added += store.slots.add([slot_row(s) for s in slots])
        report.files_counted += count_files(store, contract, now=now)
        report.changes += reevaluate(store, contract, now=now)
    report.alerts_sent, report.alerts_skipped = announce(store, watched, publish, now=now,
                                                         calendar_url=calendar_url)
    return report
