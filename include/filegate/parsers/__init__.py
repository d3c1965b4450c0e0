"""Parsers turn a raw file into batches of text columns, exactly as written after unquoting."""

from __future__ import annotations

from filegate.parsers.base import BadRow, ParseError, Reader
from filegate.parsers.csv_reader import CsvReader
from filegate.parsers.registry import READERS, detect_format, open_reader
from filegate.parsers.source import Prepared, prepare

__all__ = ["READERS", "BadRow", "CsvReader", "ParseError", "Prepared", "Reader", "detect_format", "open_reader",
           "prepare"]
