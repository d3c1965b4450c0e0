"""Contract validation: casts, row rules, file rules."""

from __future__ import annotations

from filegate.validation.validator import FileRejected, Validator, check_header

__all__ = ["FileRejected", "Validator", "check_header"]
