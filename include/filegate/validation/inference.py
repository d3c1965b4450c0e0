"""Schema inference for feeds that declare no columns: each column's type is the narrowest of bool, int, float,
date, datetime that every present value in the whole file fits (else string); nullable if a value is missing
(blank, or a missing-value marker such as `NA`).

Inference never loses data: a number with a leading zero (`00501`, a ZIP code or an account) stays text, and so
does a whole number that int64 cannot hold or that has more digits than a float keeps; hexadecimal (`0x1F`) is
not an int.

The schema is the whole file's, so a value late in the file cannot contradict it. The engine infers it from the
first batch, then checks each later batch with `fits` once it is validated (only the chosen type, and mostly
what the validator's casts already said: far cheaper than `update`, which tries every candidate); a batch that
would change the schema sends the file back to a first pass over all of it.
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


# The first characters a LEADING_ZERO match can start with (RE2's \s is these four and the space).
LEADING_ZERO_STARTS = pa.array(["0", "+", "-", " ", "\t", "\n", "\f", "\r"], pa.string())
FLOAT_LOSES_DIGITS_MIN_LENGTH = 16  # [1-9] and 15 digits: no shorter text matches


def _any(text: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(text, pattern)).as_py())


def _has_leading_zero(text: pa.Array) -> bool:
    """`_any(text, LEADING_ZERO)`, with the regex run only on the values whose first character could start a
    match (most numbers start with 1-9): a twentieth of the cost."""
    could = pc.fill_null(pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=LEADING_ZERO_STARTS), False)
    if not could.true_count:
        return False
    return _any(text.filter(could), LEADING_ZERO)


def _float_loses_digits(text: pa.Array) -> bool:
    """`_any(text, FLOAT_LOSES_DIGITS)`, with the regex run only on values long enough to match."""
    long = pc.fill_null(pc.greater_equal(pc.binary_length(text), FLOAT_LOSES_DIGITS_MIN_LENGTH), False)
    if not long.true_count:
        return False
    return _any(text.filter(long), FLOAT_LOSES_DIGITS)


@dataclass
class SchemaInference:
    """`null_values`: the texts that mean a missing value (default: pandas' read_csv markers)."""

    header: list[str]
    null_values: Iterable[str] = DEFAULT_NULL_VALUES
    guesses: dict[str, _ColumnGuess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.guesses = {name: _ColumnGuess(name) for name in self.header}
        self._markers = pa.array(sorted({v.strip() for v in self.null_values if v.strip()}), pa.string())
        self._markers_valid: dict[str, bool] = {}  # per type: a marker is also a value of it (-999 an int)

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
            if ("int" in guess.alive or "float" in guess.alive) and _has_leading_zero(text):
                guess.alive = [kind for kind in guess.alive if kind not in ("int", "float")]
            if "float" in guess.alive and _float_loses_digits(text):
                guess.alive.remove("float")
            for kind in list(guess.alive):
                if not self._fits(name, kind, text, missing):
                    guess.alive.remove(kind)

    def fits(self, batch: pa.RecordBatch, *, validated_clean: bool = False) -> bool:
        """True when `update(batch)` would leave `columns()` as it is: each column's chosen type holds every
        present value of the batch (the candidates before it are already out, so it stays the first alive), a
        column inferred not null has no missing value, and a column with no value so far gets none. Checks one
        type per column where `update` tries every candidate still alive.

        `validated_clean`: a `Validator` with `columns()` rejected no row of the batch, so every int, float,
        date and datetime value that is not a marker was cast without fault, and a not-null column had no
        blank or marker (the validator's markers for inferred columns are this set): what is left to check
        there is what only inference asks (leading zeros, float digits)."""
        for name in self.header:
            guess = self.guesses[name]
            kind = guess.alive[0] if guess.alive and guess.values else "string"
            text = batch.column(name)
            if validated_clean and guess.values and kind in ("int", "float", "date", "datetime"):
                if kind in ("int", "float") and _has_leading_zero(text):
                    return False
                if kind == "float" and _float_loses_digits(text):
                    return False
            elif not self._column_fits(name, text):
                return False
        return True

    def _column_fits(self, name: str, text: pa.Array) -> bool:
        guess = self.guesses[name]
        kind = guess.alive[0] if guess.alive and guess.values else "string"
        if kind == "string" and guess.values and guess.nullable:
            return True  # text that may be missing: nothing can change it
        if kind not in ("string", "bool") and guess.values:
            quick = self._quick_fit(kind, text, guess.nullable)
            if quick is not None:
                return quick
        text, missing, blanks = self._present(text)
        if blanks and not guess.nullable:
            return False
        if blanks == len(text) or (kind == "string" and guess.values):
            return True
        if not guess.values:
            return False  # the column's first value: its type is still open
        if kind in ("int", "float") and _has_leading_zero(text):
            return False
        if kind == "float" and _float_loses_digits(text):
            return False
        return self._fits(name, kind, text, missing)

    def _quick_fit(self, kind: str, text: pa.Array, nullable: bool) -> bool | None:
        """The usual batch in one cast of the raw text (blank cells read as null): when every value fits, so do
        the present ones once markers are taken out, and the nulls are the blank cells. None when a value did
        not fit (a marker, or a value that changes the type) or a marker is itself a valid value: `fits`
        then takes the exact way, markers out first."""
        typed, invalid = cast_column(text, Column(name="_", type=kind))  # type: ignore[arg-type]
        if invalid.true_count or (not nullable and self._marker_is_a_value(kind)):
            return None
        if typed.null_count and not nullable:
            return False
        if kind in ("int", "float") and _has_leading_zero(text):
            return False
        return not (kind == "float" and _float_loses_digits(text))

    def _marker_is_a_value(self, kind: str) -> bool:
        if kind not in self._markers_valid:
            _, invalid = cast_column(self._markers, Column(name="_", type=kind))  # type: ignore[arg-type]
            self._markers_valid[kind] = invalid.false_count > 0
        return self._markers_valid[kind]

    def columns(self) -> list[Column]:
        out = []
        for name in self.header:
            guess = self.guesses[name]
            kind = guess.alive[0] if guess.alive and guess.values else "string"
            out.append(Column(name=name, type=kind, nullable=guess.nullable))  # type: ignore[arg-type]
        return out

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {c.name: {"type": c.type, "nullable": c.nullable} for c in self.columns()}
