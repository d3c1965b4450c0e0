from __future__ import annotations

import itertools

import pytest

from filegate.status.lifecycle import ALLOWED, TERMINAL, Status, TransitionError, check


def test_every_status_has_rules() -> None:
    assert set(ALLOWED) == set(Status)


def test_happy_path_is_allowed() -> None:
    path = [Status.PENDING, Status.DOWNLOADED, Status.QUEUED, Status.PROCESSING, Status.PROCESSED]
    for before, after in itertools.pairwise(path):
        check(before, after)


def test_duplicate_is_final() -> None:
    assert ALLOWED[Status.DUPLICATE] == frozenset()
    with pytest.raises(TransitionError, match="a duplicate file cannot become queued"):
        check(Status.DUPLICATE, Status.QUEUED)


def test_terminal_files_can_only_be_requeued() -> None:
    for status in TERMINAL - {Status.DUPLICATE}:
        assert ALLOWED[status] == {Status.QUEUED}


def test_skipping_steps_is_refused() -> None:
    with pytest.raises(TransitionError, match="may become"):
        check(Status.DOWNLOADED, Status.PROCESSED)


def test_failure_statuses_need_a_reason() -> None:
    from filegate.status.lifecycle import NEEDS_REASON

    for status in NEEDS_REASON:
        source = Status.PROCESSING if status != Status.DUPLICATE else Status.PENDING
        with pytest.raises(TransitionError, match="without a reason a person can act on"):
            check(source, status, reason="  ")
        check(source, status, reason="HTTP 400 from the API")


def test_only_finished_files_are_reprocessable() -> None:
    from filegate.status.lifecycle import REPROCESSABLE

    assert TERMINAL - {Status.DUPLICATE} == REPROCESSABLE
    assert all(Status.QUEUED in ALLOWED[s] for s in REPROCESSABLE)
