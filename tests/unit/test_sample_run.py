"""`make run` waits as long as files keep moving and stops only when nothing has moved for a long time, so a
busy machine gets the same verdict as an idle one, later."""

from __future__ import annotations

from filegate_stack.samples import PROGRESS_EVERY_S, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_run_that_keeps_moving_never_stalls() -> None:
    clock = Clock()
    progress = Progress("phase 1", stall_s=300, clock=clock)
    for step in range(60):  # 60 changes, 100 s apart: 6,000 s in all, twenty times the stall limit
        clock.now += 100
        line = progress.observe({"a.csv": "processing" if step % 2 else "queued", "b.csv": "processed"})
        assert line is not None and "1 processed" in line
        assert not progress.stalled


def test_nothing_moving_for_the_stall_limit_stops_the_wait() -> None:
    clock = Clock()
    progress = Progress("phase 1", stall_s=300, clock=clock)
    progress.observe({"a.csv": "queued"})
    clock.now += 299
    assert not progress.stalled
    clock.now += 2
    assert progress.stalled


def test_progress_is_printed_on_change_and_otherwise_every_interval() -> None:
    clock = Clock()
    progress = Progress("DAGs", clock=clock)
    assert progress.observe({"process_orders": "not parsed yet"}) is not None
    clock.now += 1
    assert progress.observe({"process_orders": "not parsed yet"}) is None
    clock.now += PROGRESS_EVERY_S
    line = progress.observe({"process_orders": "not parsed yet"})
    assert line == f"  DAGs: 1 not parsed yet  ({PROGRESS_EVERY_S + 1:.0f} s since the last change)"
