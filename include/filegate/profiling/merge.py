"""Merging column profiles computed on separate parts of one file (Lambda splits large files into byte
ranges), and carrying them between processes as JSON.

Kept beside profile.py rather than inside it: it only reads and combines ColumnProfile's fields, with the
same arithmetic `update` uses batch by batch (counts add, Chan's parallel mean/variance, KMV sketches union,
top-value counters add). tests/unit/lambdas/test_profile_merge.py checks that profiling two halves and merging
gives the profile of the whole, so a new field without a merge rule fails there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np

from filegate.profiling import profile as _profile
from filegate.profiling.profile import ColumnProfile, TableProfile
from filegate.profiling.sketch import DistinctSketch

MERGED_FIELDS = {"name", "type", "count", "nulls", "markers", "minimum", "maximum", "numeric_count", "mean", "m2",
                 "distinct", "top", "top_exact"}


def _encode(value: Any) -> Any:
    """JSON-safe, and decodes back to the same Python type so that min/max keep comparing correctly."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    for tag, kind in (("datetime", datetime), ("date", date), ("time", time)):
        if isinstance(value, kind):
            return {"$": tag, "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, bytes):
        return {"$": "bytes", "v": value.hex()}
    return {"$": "str", "v": str(value)}


_DECODERS = {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "time": time.fromisoformat,
             "decimal": Decimal, "bytes": bytes.fromhex, "str": str}


def _decode(value: Any) -> Any:
    return _DECODERS[value["$"]](value["v"]) if isinstance(value, dict) else value


def _check_fields() -> None:
    unknown = {f.name for f in fields(ColumnProfile)} - MERGED_FIELDS
    if unknown:
        raise NotImplementedError(f"ColumnProfile field(s) {', '.join(sorted(unknown))} have no merge rule in "
                                  "filegate.profiling.merge")


def column_state(column: ColumnProfile) -> dict[str, Any]:
    _check_fields()
    return {"name": column.name, "type": column.type, "count": column.count, "nulls": column.nulls,
            "markers": column.markers,
            "minimum": _encode(column.minimum), "maximum": _encode(column.maximum),
            "numeric_count": column.numeric_count, "mean": column.mean, "m2": column.m2,
            "distinct": {"k": column.distinct.k, "smallest": [int(h) for h in column.distinct.smallest]},
            "top": dict(column.top), "top_exact": column.top_exact}


def column_from_state(state: dict[str, Any]) -> ColumnProfile:
    sketch = DistinctSketch(state["distinct"]["k"])
    sketch.smallest = np.array(state["distinct"]["smallest"], dtype=np.uint64)
    return ColumnProfile(name=state["name"], type=state["type"], count=state["count"], nulls=state["nulls"],
                         markers=state.get("markers", 0),
                         minimum=_decode(state["minimum"]), maximum=_decode(state["maximum"]),
                         numeric_count=state["numeric_count"], mean=state["mean"], m2=state["m2"],
                         distinct=sketch, top=Counter(state["top"]), top_exact=state["top_exact"])


def merge_column(into: ColumnProfile, other: ColumnProfile) -> None:
    _check_fields()
    into.count += other.count
    into.nulls += other.nulls
    into.markers += other.markers
    if other.minimum is not None:
        into.minimum = other.minimum if into.minimum is None else min(into.minimum, other.minimum)
        into.maximum = other.maximum if into.maximum is None else max(into.maximum, other.maximum)
    if other.numeric_count:
        total = into.numeric_count + other.numeric_count
        delta = other.mean - into.mean
        into.mean += delta * other.numeric_count / total
        into.m2 += other.m2 + delta * delta * into.numeric_count * other.numeric_count / total
        into.numeric_count = total
    into.distinct.update(other.distinct.smallest.copy())
    into.top.update(other.top)
    into.top_exact = into.top_exact and other.top_exact
    if len(into.top) > 10 * _profile.TOP_KEEP:
        into.top = Counter(dict(into.top.most_common(_profile.TOP_KEEP)))


def table_state(table: TableProfile) -> dict[str, Any]:
    return {"rows": table.rows, "columns": [column_state(c) for c in table.columns.values()]}


def merge_states(states: list[dict[str, Any]]) -> TableProfile:
    """One profile from the parts' states, columns in first-seen order (as one pass over the file)."""
    merged = TableProfile()
    for state in states:
        merged.rows += state.get("rows", 0)
        for column in state["columns"]:
            part = column_from_state(column)
            if part.name in merged.columns:
                merge_column(merged.columns[part.name], part)
            else:
                merged.columns[part.name] = part
    return merged
