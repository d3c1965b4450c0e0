"""Schema inference for feeds that declare no columns: each column's type is the narrowest of bool, int, float,
date, datetime that every present value in the whole file fits (else string); nullable if a value is missing
(blank, or a missing-value marker such as `NA`).

Inference never loses data: a number with a leading zero (`00501`, a ZIP code or an account) stays text, and so
does a whole number that int64 cannot hold or that has more digits than a float keeps; hexadecimal (`0x1F`) is
not an int.

The schema is the whole file's, so a value late in the file cannot contradict it. The engine infers it from the
first batch, then checks each later batch with `fits` (only the chosen type, far cheaper than `update`, which
tries every candidate) while it validates; a batch that would change the schema sends it back to a first pass
over the whole file.
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

    def _present(self, text: pa.Array) -> tuple[pa.Array, pa.Array, int]:
        """(the values with the missing ones null, which are missing, how many)."""
        trimmed = pc.utf8_trim_whitespace(text)
        missing = is_empty(trimmed)
        if len(self._markers):
            missing = pc.or_(missing, pc.fill_null(pc.is_in(trimmed, value_set=self._markers), False))
        blanks = missing.true_count
        if blanks and blanks < len(text):
            text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
        return text, missing, blanks

    @staticmethod
    def _fits(name: str, kind: str, text: pa.Array, missing: pa.Array) -> bool:
        """Every present value reads as `kind` (the leading-zero and float-digits rules are checked apart)."""
        if kind == "bool":
            words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
            return bool(pc.all(pc.or_(missing, pc.is_in(words, value_set=pa.array(BOOL_WORDS)))).as_py())
        _, invalid = cast_column(text, Column(name=name, type=kind))  # type: ignore[arg-type]
        return not pc.any(invalid).as_py()

    def update(self, batch: pa.RecordBatch) -> None:
        for name in self.header:
            guess = self.guesses[name]
            text, missing, blanks = self._present(batch.column(name))
            guess.nullable |= blanks > 0
            guess.values += len(text) - blanks
            if blanks == len(text):
                continue
            if ("int" in guess.alive or "float" in guess.alive) and _any(text, LEADING_ZERO):
                guess.alive = [kind for kind in guess.alive if kind not in ("int", "float")]
            if "float" in guess.alive and _any(text, FLOAT_LOSES_DIGITS):
                guess.alive.remove("float")
            for kind in list(guess.alive):
                if not self._fits(name, kind, text, missing):
                    guess.alive.remove(kind)

    def fits(self, batch: pa.RecordBatch) -> bool:
        """True when `update(batch)` would leave `columns()` as it is: each column's chosen type holds every
        present value of the batch (the candidates before it are already out, so it stays the first alive), a
        column inferred not null has no missing value, and a column with no value so far gets none. Checks one
        type per column where `update` tries every candidate still alive."""
        for name in self.header:
            guess = self.guesses[name]
            kind = guess.alive[0] if guess.alive and guess.values else "string"
            if kind == "string" and guess.values and guess.nullable:
                continue  # text that may be missing: nothing can change it
            text, missing, blanks = self._present(batch.column(name))
            if blanks and not guess.nullable:
                return False
            if blanks == len(text) or (kind == "string" and guess.values):
                continue
            if not guess.values:
                return False  # the column's first value: its type is still open
            if kind in ("int", "float") and _any(text, LEADING_ZERO):
                return False
            if kind == "float" and _any(text, FLOAT_LOSES_DIGITS):
                return False
            if not self._fits(name, kind, text, missing):
                return False
        return True

    def columns(self) -> list[Column]:
        out = []
        for name in self.header:
            guess = self.guesses[name]
            kind = guess.alive[0] if guess.alive and guess.values else "string"
            out.append(Column(name=name, type=kind, nullable=guess.nullable))  # type: ignore[arg-type]
        return out

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {c.name: {"type": c.type, "nullable": c.nullable} for c in self.columns()}
