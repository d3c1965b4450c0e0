"""File status: lifecycle rules and the Postgres store.

The store's names (`Actor`, `Registration`, `StatusStore`) are imported on first use: a DAG file's parse imports
the lifecycle rules, and must not import psycopg with them (docs/benchmarks.md, DAG file parse time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from filegate.status.lifecycle import REPROCESSABLE, TERMINAL, Status, TransitionError

if TYPE_CHECKING:
    from filegate.status.store import Actor, Registration, StatusStore

__all__ = ["REPROCESSABLE", "TERMINAL", "Actor", "Registration", "Status", "StatusStore", "TransitionError"]
_FROM_THE_STORE = {"Actor", "Registration", "StatusStore"}


def __getattr__(name: str) -> Any:
    if name in _FROM_THE_STORE:
        from filegate.status import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
