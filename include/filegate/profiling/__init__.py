"""Column profiles computed batch by batch in bounded memory."""

from __future__ import annotations

from filegate.profiling.profile import ColumnProfile, TableProfile

__all__ = ["ColumnProfile", "TableProfile"]
