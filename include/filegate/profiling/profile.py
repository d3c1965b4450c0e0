"""Per-column statistics merged batch by batch in bounded memory, all in pyarrow/numpy (no per-row Python):
count, nulls, distinct (KMV sketch: exact below 4,096 values), min/max, mean/stddev (Chan's parallel merge),
top values (exact while a batch has few distinct values, else each batch's heaviest), and duplicate rows."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filegate.profiling.sketch import DistinctSketch, DuplicateCounter, FewDistinct, combine, hash_values, mix

TOP_VALUES = 5
EXACT_TOP_BELOW = 1_000  # a batch with fewer distinct values merges all their counts
HEAVY_PER_BATCH = 50
TOP_KEEP = 1_000  # heavy hitters kept between prunes (x10 at most): bounded memory per column
# ...and bounded in bytes too: a text longer than this is never a top value (10,000 kept values of a few MB each
# would hold gigabytes), and would be no use to a person reading the summary anyway.
TOP_VALUE_MAX_CHARS = 1_000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def inert(value: str) -> str:
    """Keeps spreadsheet formulas (=cmd|..., +, -, @) from running when text is opened in a spreadsheet."""
    return "'" + value if value and value.startswith(FORMULA_PREFIXES) else value


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return inert(str(value))


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


@dataclass
class ColumnProfile:
    name: str
    type: str
    count: int = 0
    nulls: int = 0
    markers: int = 0  # of the nulls, cells that held a missing-value marker (NA, NULL, …) rather than nothing
    minimum: Any = None
    maximum: Any = None
    numeric_count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    distinct: DistinctSketch = field(default_factory=DistinctSketch)
    top: Counter[str] = field(default_factory=Counter)
    top_exact: bool = True

    def update(self, values: pa.Array, hashes: np.ndarray | None, valid: np.ndarray | None,
               few: FewDistinct | None = None) -> None:
        """`few`: the text column's dictionary encoding, when it has few distinct values (saves a second pass).
        `hashes`/`valid` (`hash_values` of `values`) may be None: they are then computed if the sketch needs them."""
        self.count += len(values)
        self.nulls += values.null_count
        if len(values) == values.null_count:
            return
        kind = values.type
        if self.distinct.exact and few is not None:
            self.distinct.update(few.hashes)
        elif self.distinct.exact:
            unique = pc.drop_null(pc.unique(values))
            self.distinct.update(hash_values(unique)[0])
        else:
            if hashes is None or valid is None:
                hashes, valid = hash_values(values, few_distinct=False)
            self.distinct.update(hashes[valid] if values.null_count else hashes)
        if not (_is_text(kind) or pa.types.is_boolean(kind)):
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            self.minimum = low if self.minimum is None else min(self.minimum, low)
            self.maximum = high if self.maximum is None else max(self.maximum, high)
        if _is_numeric(kind):
            # Mean and spread in float64; integers past 2^53 (ids up to int64's maximum) round, never fail.
            self._merge_moments(values if pa.types.is_floating(kind) else pc.cast(values, pa.float64(), safe=False))
        if (_is_text(kind) or pa.types.is_boolean(kind)) and not self._mostly_distinct():
            self._merge_top(values, few)

    def _mostly_distinct(self) -> bool:
        """A key-like column (most values distinct) has no meaningful top values: stop counting them."""
        if self.distinct.exact or self.count < 10 * EXACT_TOP_BELOW:
            return False
        self.top_exact = False
        return self.distinct.estimate() > 0.5 * (self.count - self.nulls)

    def _merge_moments(self, values: pa.Array) -> None:
        n = len(values) - values.null_count
        mean = pc.mean(values).as_py()
        m2 = (pc.variance(values, ddof=0).as_py() or 0.0) * n
        if mean is None or not math.isfinite(mean):
            return
        total = self.numeric_count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.numeric_count * n / total
        self.numeric_count = total

    def _merge_top(self, values: pa.Array, few: FewDistinct | None = None) -> None:
        if few is not None:
            distinct = few.dictionary
            numbers = np.bincount(few.codes[few.codes >= 0], minlength=len(distinct))
        else:
            counts = pc.value_counts(pc.drop_null(values))
            distinct, numbers = counts.field("values"), counts.field("counts").to_numpy()
        if len(numbers) > EXACT_TOP_BELOW:
            self.top_exact = False
            heavy = np.argpartition(-numbers, HEAVY_PER_BATCH)[:HEAVY_PER_BATCH]
            distinct, numbers = distinct.take(pa.array(heavy)), numbers[heavy]
        if _is_text(distinct.type):
            short = pc.fill_null(pc.less_equal(pc.utf8_length(distinct), TOP_VALUE_MAX_CHARS), False)
            if not pc.all(short).as_py():
                distinct, numbers = distinct.filter(short), numbers[short.to_numpy(zero_copy_only=False)]
        for value, count in zip(distinct.to_pylist(), numbers.tolist(), strict=True):
            self.top[str(value).lower() if isinstance(value, bool) else str(value)] += count
        if len(self.top) > 10 * TOP_KEEP:
            self.top = Counter(dict(self.top.most_common(TOP_KEEP)))

    def as_dict(self) -> dict[str, Any]:
        valued = self.count - self.nulls
        out: dict[str, Any] = {
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
            "null_percent": round(100.0 * self.nulls / self.count, 3) if self.count else 0.0,
            "null_markers": self.markers,
            "distinct": self.distinct.estimate() if valued else 0,
            "distinct_approximate": not self.distinct.exact,
        }
        if self.minimum is not None:
            out["min"], out["max"] = _plain(self.minimum), _plain(self.maximum)
        if self.numeric_count:
            out["mean"] = self.mean
            out["stddev"] = math.sqrt(max(self.m2 / self.numeric_count, 0.0))
        if self.top:
            # Ties broken by value, not by first sighting: profiles merged from parts (Lambda) report the same.
            top = sorted(self.top.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
            if top[0][1] > 1 or self.distinct.exact:  # a key column's "top values" would all be 1: say nothing
                out["top_values"] = [{"value": inert(v), "count": c} for v, c in top]
                out["top_values_approximate"] = not self.top_exact
        return out


@dataclass
class TableProfile:
    """`distinct_rows`: the rows are known to differ (they passed a non-null unique column's check), so no row
    can repeat another and the duplicate-row pass is skipped: its count is exactly 0."""

    work_dir: Path | None = None
    distinct_rows: bool = False
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    rows: int = 0
    _duplicates: DuplicateCounter | None = None
    duplicate_rows: int = 0
    duplicate_samples: list[int] = field(default_factory=list)

    def update(self, table: pa.Table | pa.RecordBatch, row_numbers: np.ndarray | None = None,
               markers: dict[str, int] | None = None) -> None:
        """`row_numbers` (1-based, of the file) name sample rows; default: consecutive after earlier updates.
        `markers`: per column, how many of the table's nulls were missing-value markers in the file."""
        if table.num_rows == 0:
            return
        if row_numbers is None:
            row_numbers = np.arange(self.rows + 1, self.rows + 1 + table.num_rows, dtype=np.int64)
        row_hash: np.ndarray | None = None
        for name in table.column_names:
            column = table[name]
            values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            profile = self.columns.get(name)
            if profile is None:
                profile = self.columns[name] = ColumnProfile(name, str(values.type))
            few = FewDistinct.of(values) if _is_text(values.type) and profile.distinct.exact else None
            hashes: np.ndarray | None = None
            valid: np.ndarray | None = None
            if few is not None:
                hashes, valid = few.row_hashes(), few.codes >= 0
            elif not (self.distinct_rows and profile.distinct.exact):
                # Unneeded otherwise: an exact sketch hashes only the batch's distinct values, and no row hash
                # is built for rows known to differ.
                hashes, valid = hash_values(values, few_distinct=False)
            if not self.distinct_rows:
                assert hashes is not None
                row_hash = combine(row_hash, hashes)
            profile.update(values, hashes, valid, few)
            if markers:
                profile.markers += markers.get(name, 0)
        self.rows += table.num_rows
        if self.distinct_rows:
            return
        if self._duplicates is None:
            self._duplicates = DuplicateCounter(self.work_dir)
        assert row_hash is not None
        self._duplicates.add(mix(row_hash), row_numbers)

    def finish(self) -> None:
        if self._duplicates is not None:
            self.duplicate_rows, self.duplicate_samples = self._duplicates.finish()
            self._duplicates = None

    def close(self) -> None:
        if self._duplicates is not None:
            self._duplicates.close()
            self._duplicates = None

    def as_dict(self) -> dict[str, Any]:
        return {name: profile.as_dict() for name, profile in self.columns.items()}
