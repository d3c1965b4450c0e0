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


# Only a finished file may be re-run from its raw copy; a duplicate is never loaded twice, and files not yet
# finished are still owned by (or waiting for) a process_<feed> run.
REPROCESSABLE = frozenset({Status.PROCESSED, Status.FAILED, Status.QUARANTINED})
# A person reading the status must learn why, and what to do: these statuses never go without a reason.
NEEDS_REASON = frozenset({Status.FAILED, Status.QUARANTINED, Status.DUPLICATE})


class TransitionError(RuntimeError):
    """A status change the lifecycle does not allow."""


def sources_of(target: Status) -> list[str]:
    return sorted(str(s) for s, targets in ALLOWED.items() if target in targets)


def check(current: Status, target: Status, *, reason: str | None = None) -> None:
    """Raises TransitionError unless `current` → `target` is allowed and, where needed, carries a reason."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing (terminal)"
        raise TransitionError(f"a {current} file cannot become {target}; from {current} it may become: {allowed}")
    if target in NEEDS_REASON and not (reason or "").strip():
        raise TransitionError(f"a file cannot become {target} without a reason a person can act on")
