"""Transforms applied to valid rows: rename, cast, derive, filter; aggregate across the whole file."""

from __future__ import annotations

from filegate.transforms.aggregate import Aggregator
from filegate.transforms.apply import apply_transforms

__all__ = ["Aggregator", "apply_transforms"]
