"""Transforms applied to valid rows: rename, derive, filter."""

from __future__ import annotations

from filegate.transforms.apply import apply_transforms

__all__ = ["apply_transforms"]
