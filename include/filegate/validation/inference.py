"""Schema inference for feeds that declare no columns: each column's type is the narrowest of bool, int, float,
date, datetime that every present value in the whole file fits (else string); nullable if a value is missing
(blank, or a missing-value marker such as `NA`).

Inference never loses data: a number with a leading zero (`00501`, a ZIP code or an account) stays text, and so
does a whole number that int64 cannot hold or that has more digits than a float keeps; hexadecimal (`0x1F`) is
not an int.

Runs over every batch (a first pass over the file), so a value late in the file cannot contradict the schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import DEFAULT_NULL_VALUES, Column
from filegate.validation.casts import cast_column, is_empty

CANDIDATES = ["bool", "int", "float", "date", "datetime"]
# 0/1 columns are numbers more often than flags: inference calls a column bool only on words.
BOOL_WORDS = ["true", "false", "yes", "no", "t", "f", "y", "n"]
# An identifier, not a quantity: reading it as a number would drop its leading zeros.
LEADING_ZERO = r"^\s*[+-]?0\d"
# More significant digits than a float64 holds: a whole number past 2^53 (16 digits and up), or 18 and more
# digits with a point. Such a column stays text rather than losing its last digits.
FLOAT_LOSES_DIGITS = r"^\s*[+-]?0*[1-9](\d{15,}\s*$|(\.?\d){17,})"


@dataclass
class _ColumnGuess:
    name: str
    alive: list[str] = field(default_factory=lambda: list(CANDIDATES))
    nullable: bool = False
    values: int = 0


def _any(text: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(text, pattern)).as_py())


@dataclass
class SchemaInference:
    """`null_values`: the texts that mean a missing value (default: pandas' read_csv markers)."""

    header: list[str]
    null_values: Iterable[str] = DEFAULT_NULL_VALUES
    guesses: dict[str, _ColumnGuess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.guesses = {name: _ColumnGuess(name) for name in self.header}
        self._markers = pa.array(sorted({v.strip() for v in self.null_values if v.strip()}), pa.string())

    def update(self, batch: pa.RecordBatch) -> None:
        for name in self.header:
            guess = self.guesses[name]
            text = batch.column(name)
            trimmed = pc.utf8_trim_whitespace(text)
            missing = is_empty(trimmed)
            if len(self._markers):
                missing = pc.or_(missing, pc.fill_null(pc.is_in(trimmed, value_set=self._markers), False))
            blanks = missing.true_count
            guess.nullable |= blanks > 0
            guess.values += len(text) - blanks
            if blanks == len(text):
                continue
            if blanks:
                text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
            if ("int" in guess.alive or "float" in guess.alive) and _any(text, LEADING_ZERO):
                guess.alive = [kind for kind in guess.alive if kind not in ("int", "float")]
            if "float" in guess.alive and _any(text, FLOAT_LOSES_DIGITS):
                guess.alive.remove("float")
            for kind in list(guess.alive):
                if kind == "bool":
                    words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
                    fits = pc.all(pc.or_(missing, pc.is_in(words, value_set=pa.array(BOOL_WORDS)))).as_py()
                else:
                    _, invalid = cast_column(text, Column(name=name, type=kind))  # type: ignore[arg-type]
                    fits = not pc.any(invalid).as_py()
                if not fits:
                    guess.alive.remove(kind)

    def columns(self) -> list[Column]:
        out = []
        for name in self.header:
            guess = self.guesses[name]
            kind = guess.alive[0] if guess.alive and guess.values else "string"
            out.append(Column(name=name, type=kind, nullable=guess.nullable))  # type: ignore[arg-type]
        return out

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {c.name: {"type": c.type, "nullable": c.nullable} for c in self.columns()}
