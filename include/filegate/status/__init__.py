"""File status: lifecycle rules and the Postgres store."""

from __future__ import annotations

from filegate.status.lifecycle import REPROCESSABLE, TERMINAL, Status, TransitionError
from filegate.status.store import Actor, Registration, StatusStore

__all__ = ["REPROCESSABLE", "TERMINAL", "Actor", "Registration", "Status", "StatusStore", "TransitionError"]
