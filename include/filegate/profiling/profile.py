"""Per-column statistics merged across batches: counts, nulls, distinct (capped), min/max/mean/stddev, top values."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

DISTINCT_CAP = 100_000
TOP_VALUES = 5


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


@dataclass
class ColumnProfile:
    name: str
    type: str
    count: int = 0
    nulls: int = 0
    minimum: Any = None
    maximum: Any = None
    total: float = 0.0
    total_sq: float = 0.0
    numeric_count: int = 0
    distinct: set[Any] = field(default_factory=set)
    distinct_capped: bool = False
    top: Counter[str] = field(default_factory=Counter)

    def update(self, values: pa.ChunkedArray | pa.Array) -> None:
        self.count += len(values)
        self.nulls += values.null_count
        if len(values) == values.null_count:
            return
        kind = values.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)):
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            self.minimum = low if self.minimum is None else min(self.minimum, low)
            self.maximum = high if self.maximum is None else max(self.maximum, high)
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            as_float = pc.cast(values, pa.float64())
            self.total += pc.sum(as_float).as_py() or 0.0
            self.total_sq += pc.sum(pc.multiply(as_float, as_float)).as_py() or 0.0
            self.numeric_count += len(values) - values.null_count
        if not self.distinct_capped:
            self.distinct.update(pc.unique(values).to_pylist())
            self.distinct.discard(None)
            if len(self.distinct) > DISTINCT_CAP:
                self.distinct_capped = True
                self.distinct = set()
        if pa.types.is_string(kind) or pa.types.is_boolean(kind):
            counts = pc.value_counts(pc.drop_null(values))
            for item in counts.to_pylist():
                self.top[str(item["values"])] += item["counts"]
            if len(self.top) > DISTINCT_CAP:
                self.top = Counter(dict(self.top.most_common(DISTINCT_CAP // 10)))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
            "null_percent": round(100.0 * self.nulls / self.count, 3) if self.count else 0.0,
            "distinct": None if self.distinct_capped else len(self.distinct),
            "distinct_at_least": DISTINCT_CAP if self.distinct_capped else None,
        }
        if self.minimum is not None:
            out["min"], out["max"] = _plain(self.minimum), _plain(self.maximum)
        if self.numeric_count:
            mean = self.total / self.numeric_count
            variance = max(self.total_sq / self.numeric_count - mean * mean, 0.0)
            out["mean"] = mean
            out["stddev"] = math.sqrt(variance)
        if self.top:
            out["top_values"] = [{"value": v, "count": c} for v, c in self.top.most_common(TOP_VALUES)]
        return out


@dataclass
class TableProfile:
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def update(self, table: pa.Table) -> None:
        for name in table.column_names:
            column = table[name]
            profile = self.columns.get(name)
            if profile is None:
                profile = self.columns[name] = ColumnProfile(name, str(column.type))
            profile.update(column)

    def as_dict(self) -> dict[str, Any]:
        return {name: profile.as_dict() for name, profile in self.columns.items()}
