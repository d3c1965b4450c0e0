"""Schema inference for feeds that declare no columns: each column's type is the narrowest of bool, int, float,
date, datetime that every non-blank value in the whole file fits (else string); nullable if a value is blank.

Runs over every batch (a first pass over the file), so a value late in the file cannot contradict the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column
from filegate.validation.casts import cast_column, is_empty

CANDIDATES = ["bool", "int", "float", "date", "datetime"]
# 0/1 columns are numbers more often than flags: inference calls a column bool only on words.
BOOL_WORDS = ["true", "false", "yes", "no", "t", "f", "y", "n"]


@dataclass
class _ColumnGuess:
    name: str
    alive: list[str] = field(default_factory=lambda: list(CANDIDATES))
    nullable: bool = False
    values: int = 0


@dataclass
class SchemaInference:
    header: list[str]
    guesses: dict[str, _ColumnGuess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.guesses = {name: _ColumnGuess(name) for name in self.header}

    def update(self, batch: pa.RecordBatch) -> None:
        for name in self.header:
            guess = self.guesses[name]
            text = batch.column(name)
            blank = is_empty(pc.utf8_trim_whitespace(text))
            blanks = pc.sum(blank).as_py() or 0
            guess.nullable |= blanks > 0
            guess.values += len(text) - blanks
            if blanks == len(text):
                continue
            for kind in list(guess.alive):
                if kind == "bool":
                    words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
                    fits = pc.all(pc.or_(blank, pc.is_in(words, value_set=pa.array(BOOL_WORDS)))).as_py()
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
