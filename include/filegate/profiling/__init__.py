"""Column profiles computed batch by batch in bounded memory, and schema inference."""

from __future__ import annotations

from filegate.profiling.profile import ColumnProfile, TableProfile, inert

__all__ = ["ColumnProfile", "TableProfile", "inert"]
