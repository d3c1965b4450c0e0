"""The file lifecycle: which status may follow which. Every transition in the code base goes through here."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    DOWNLOADED = "downloaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"


TERMINAL = frozenset({Status.PROCESSED, Status.FAILED, Status.QUARANTINED, Status.DUPLICATE})

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.DOWNLOADED, Status.FAILED, Status.DUPLICATE}),
    Status.DOWNLOADED: frozenset({Status.QUEUED, Status.DUPLICATE, Status.FAILED}),
    Status.QUEUED: frozenset({Status.PROCESSING, Status.FAILED}),
    Status.PROCESSING: frozenset({Status.PROCESSED, Status.FAILED, Status.QUARANTINED, Status.QUEUED}),
    # Reprocessing starts again from the raw copy.
    Status.PROCESSED: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.QUARANTINED: frozenset({Status.QUEUED}),
    Status.DUPLICATE: frozenset(),
}


class TransitionError(RuntimeError):
    """A status change the lifecycle does not allow."""


def sources_of(target: Status) -> list[str]:
    return sorted(str(s) for s, targets in ALLOWED.items() if target in targets)


def check(current: Status, target: Status) -> None:
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing (terminal)"
        raise TransitionError(f"a {current} file cannot become {target}; from {current} it may become: {allowed}")
