"""Profiles of the parts of a table merge into the profile of the whole (what split Lambda runs rely on)."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from filegate.profiling.merge import merge_states, table_state
from filegate.profiling.profile import TableProfile


def _table(rows: int, seed: int, distinct_ids: int) -> pa.Table:
    rnd = random.Random(seed)
    return pa.table({
        "id": pa.array([rnd.randrange(distinct_ids) for _ in range(rows)], pa.int64()),
        "amount": pa.array([Decimal(f"{rnd.uniform(0, 999):.2f}") if rnd.random() > 0.1 else None
                            for _ in range(rows)], pa.decimal128(12, 2)),
        "day": pa.array([date(2026, 1, 1) + timedelta(days=rnd.randrange(300)) for _ in range(rows)], pa.date32()),
        "kind": pa.array([rnd.choice(["a", "b", "c", None]) for _ in range(rows)], pa.string()),
        "flag": pa.array([rnd.random() > 0.5 for _ in range(rows)], pa.bool_()),
    })


def _profile(tables: list[pa.Table]) -> TableProfile:
    profile = TableProfile()
    for table in tables:
        profile.update(table)
    return profile


def _rounded(stats: dict) -> dict:
    return {col: {k: (float(f"{v:.9g}") if k in ("mean", "stddev") else v) for k, v in s.items()}
            for col, s in stats.items()}


@pytest.mark.parametrize("distinct_ids", [50, 1_000_000])  # exact and sketched distinct counts
def test_merged_parts_equal_the_whole(distinct_ids: int) -> None:
    parts = [_table(n, seed, distinct_ids) for seed, n in enumerate([3000, 1, 2500, 4000])]
    whole = _profile(parts)
    states = [json.loads(json.dumps(table_state(_profile([p])))) for p in parts]  # through JSON, as via S3
    merged = merge_states(states)
    assert _rounded(merged.as_dict()) == _rounded(whole.as_dict())
    assert list(merged.as_dict()) == ["id", "amount", "day", "kind", "flag"]
    for profile in (whole, merged):
        getattr(profile, "close", lambda: None)()


def test_state_round_trip_keeps_types() -> None:
    profile = _profile([_table(200, 7, 10)])
    state = json.loads(json.dumps(table_state(profile)))
    again = merge_states([state])
    assert again.columns["day"].minimum == profile.columns["day"].minimum
    assert isinstance(again.columns["amount"].maximum, Decimal)
    assert again.as_dict() == profile.as_dict()
