"""Parsers turn a raw file into batches of text columns, exactly as written after unquoting."""

from __future__ import annotations

from filegate.parsers.csv_reader import CsvReader, ParseError

__all__ = ["CsvReader", "ParseError"]
