"""Claims are leases. A run that claims a file holds it until `lease_expires_at`; while its task is alive a
background thread renews the lease, so a file is re-claimable only when the process holding it is gone (a
SIGKILLed task, a worker scaled away mid-task) and never while it is merely slow.

The lease must outlast the longest pause of a live holder: the renewal thread runs every lease/5 seconds, so a
holder has to stall for four renewals in a row (a frozen machine, a Postgres outage longer than the lease) before
another run can take its files; even then, every status change out of `processing` is fenced on the claiming run
(StatusStore.transition), and loads and posts are idempotent, so a late holder changes nothing twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from filegate.settings import positive_seconds

log = logging.getLogger(__name__)
MAX_EXPIRED_CLAIMS = 3  # the third run to die holding a file fails it instead of queueing it again
DEFAULT_LEASE_S = 300.0  # Airflow's own task heartbeat timeout is 300 s: a dead task is noticed in about that


def lease_seconds() -> float:
    """How long a claim lasts without renewal (FILEGATE_CLAIM_LEASE_S, default 300 s)."""
    return positive_seconds("FILEGATE_CLAIM_LEASE_S", DEFAULT_LEASE_S)


class LeaseHolder(Protocol):
    """What renews leases: the StatusStore (not imported here: the store itself reads lease_seconds)."""

    def renew_leases(self, file_ids: Sequence[int], actor: Any, *, lease_s: float | None = None) -> list[int]: ...


@contextmanager
def keep_leases(store: LeaseHolder, actor: Any, file_ids: Iterable[int], *,
                lease_s: float | None = None) -> Iterator[None]:
    """Renews this run's leases on `file_ids` every lease/5 seconds until the block ends. A failed renewal
    (Postgres restarting) is logged and tried again at the next tick; the lease has four ticks of slack."""
    ids = list(file_ids)
    lease = lease_s or lease_seconds()
    if not ids:
        yield
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 5):
            try:
                store.renew_leases(ids, actor, lease_s=lease)
            except Exception as exc:  # the next tick tries again; the task itself goes on
                log.warning("could not renew the claim lease of %d file(s): %s", len(ids), exc)

    thread = threading.Thread(target=renew, name="filegate-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
