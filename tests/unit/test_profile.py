"""Profiles and the vectorised sketches behind them: exact where promised, close where approximate."""

from __future__ import annotations

import math
import statistics
from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from filegate.profiling.profile import TableProfile
from filegate.profiling.sketch import STRING_CHUNK_BYTES, DistinctSketch, DuplicateCounter, KeySet, hash_values


def test_numeric_date_and_text_statistics(tmp_path) -> None:
    numbers = [1.5, 2.5, None, 10.0, 3.0]
    profile = TableProfile(work_dir=tmp_path)
    table = pa.table({"x": numbers, "d": [date(2026, 1, i) for i in range(1, 6)], "s": ["a", "b", "a", None, "=1+1"]})
    profile.update(table.slice(0, 2))
    profile.update(table.slice(2))
    profile.finish()
    stats = profile.as_dict()
    present = [n for n in numbers if n is not None]
    assert (stats["x"]["count"], stats["x"]["nulls"], stats["x"]["null_percent"]) == (5, 1, 20.0)
    assert stats["x"]["mean"] == pytest.approx(statistics.fmean(present))
    assert stats["x"]["stddev"] == pytest.approx(statistics.pstdev(present))
    assert (stats["x"]["min"], stats["x"]["max"], stats["x"]["distinct"]) == (1.5, 10.0, 4)
    assert (stats["d"]["min"], stats["d"]["max"]) == ("2026-01-01", "2026-01-05")
    assert stats["s"]["top_values"][0] == {"value": "a", "count": 2}
    assert {"value": "'=1+1", "count": 1} in stats["s"]["top_values"]  # inert in the summary JSON


def test_duplicate_rows_with_sample_row_numbers(tmp_path) -> None:
    profile = TableProfile(work_dir=tmp_path)
    profile.update(pa.table({"a": [1, 2, 1], "b": ["x", "y", "x"]}))
    profile.update(pa.table({"a": [2, 3], "b": ["y", "y"]}))
    profile.finish()
    assert (profile.duplicate_rows, profile.duplicate_samples) == (2, [3, 4])


def test_distinct_sketch_exact_below_k_and_close_above() -> None:
    small = DistinctSketch()
    small.update(hash_values(pa.array([f"v{i % 1000}" for i in range(50_000)]))[0])
    assert (small.exact, small.estimate()) == (True, 1000)
    large = DistinctSketch()
    for start in range(0, 1_000_000, 100_000):
        large.update(hash_values(pa.array(np.arange(start, start + 100_000)))[0])
    assert not large.exact
    assert abs(large.estimate() - 1_000_000) / 1_000_000 < 0.05


def test_string_hash_ignores_offsets_and_separates_values() -> None:
    values = pa.array(["", "a", "ab", "ba", "a" * 3000, "é", None])
    hashes, valid = hash_values(values)
    assert len(set(hashes[valid].tolist())) == 6
    assert hash_values(pa.array(["zz", "ab"]).slice(1))[0][0] == hashes[2]
    many = pa.array([f"key-{i}" for i in range(200_000)])
    assert len(np.unique(hash_values(many)[0])) == 200_000


def test_values_longer_than_a_hash_chunk_differ_by_their_last_byte() -> None:
    long = "x" * (STRING_CHUNK_BYTES + 10)
    hashes, _ = hash_values(pa.array(["short", long + "a", long + "b", long + "a"]))
    assert hashes[1] != hashes[2] and hashes[1] == hashes[3]


def test_key_set_marks_repeats_within_and_across_batches() -> None:
    keys = KeySet()
    first = keys.seen_before(np.array([5, 3, 5, 9], dtype=np.uint64))
    second = keys.seen_before(np.array([9, 1, 1, 3], dtype=np.uint64))
    assert first.tolist() == [False, False, True, False]
    assert second.tolist() == [True, False, True, True]


def test_key_set_running_ids_then_a_repeat() -> None:
    keys = KeySet()
    assert not keys.seen_before(np.arange(1, 1001, dtype=np.uint64)).any()
    assert not keys.seen_before(np.arange(1001, 2001, dtype=np.uint64)).any()
    assert keys.seen_before(np.array([2001, 2002, 500, 2002], dtype=np.uint64)).tolist() == [False, False, True, True]
    assert keys.seen_before(np.array([2003, 2004], dtype=np.uint64)).tolist() == [False, False]
    assert keys.size == 2004
    assert keys.interval_starts == [1, 2003] and keys.interval_ends == [2000, 2004]  # no array per id


def test_key_set_agrees_with_a_python_set() -> None:
    rng = np.random.default_rng(3)
    keys, seen = KeySet(), set()
    for batch in range(90):
        if batch % 3 == 0:
            values = np.arange(batch * 100, batch * 100 + 50)
        elif batch % 3 == 1:
            values = np.sort(rng.choice(10_000, 40, replace=False)) + batch * 100
        else:
            values = rng.integers(0, 9_000, 80)
        values = values.astype(np.uint64)
        expected = []
        for key in values.tolist():
            expected.append(key in seen)
            seen.add(key)
        assert keys.seen_before(values).tolist() == expected, batch
    assert keys.size == len(seen)


def test_key_set_gapped_ascending_ids_and_repeats_across_intervals() -> None:
    keys = KeySet()
    keys.seen_before(np.arange(10, 20, dtype=np.uint64))
    keys.seen_before(np.array([30, 32, 34], dtype=np.uint64))
    keys.seen_before(np.arange(40, 50, dtype=np.uint64))
    probe = np.array([9, 10, 19, 20, 31, 32, 39, 49, 50, 9], dtype=np.uint64)
    assert keys.seen_before(probe).tolist() == [False, True, True, False, False, True, False, True, False, True]


@pytest.mark.parametrize("memory_rows", [1 << 20, 10_000], ids=["in-memory", "spilled"])
def test_duplicate_counter_counts_repeats_and_names_the_first(tmp_path, memory_rows) -> None:
    counter = DuplicateCounter(tmp_path)
    counter.memory_rows = memory_rows
    hashes = hash_values(pa.array(np.arange(100_000) % 70_000))[0]
    for start in range(0, 100_000, 25_000):
        counter.add(hashes[start:start + 25_000], np.arange(start + 1, start + 25_001))
    assert counter.finish() == (30_000, [70_001, 70_002, 70_003, 70_004, 70_005])
    assert list(tmp_path.iterdir()) == []  # spill files are gone


def test_mean_is_stable_for_large_offsets(tmp_path) -> None:
    profile = TableProfile(work_dir=tmp_path)
    for _ in range(3):
        profile.update(pa.table({"x": [1e9 + 1, 1e9 + 2, 1e9 + 3]}))
    profile.finish()
    assert profile.as_dict()["x"]["stddev"] == pytest.approx(math.sqrt(2 / 3))


def test_a_row_repeated_a_million_times_spills_a_few_entries(tmp_path) -> None:
    """Equal rows share a hash, so they all land in one spill bucket: each spill keeps the first rows of a hash
    and a count for the rest, or that bucket alone would hold every row at `finish` (16 M rows took 1 GB)."""
    counter = DuplicateCounter(tmp_path)
    counter.memory_rows = 10_000
    same = np.full(1_000, 0xABCDEF, dtype=np.uint64)
    for start in range(0, 1_000_000, 1_000):
        counter.add(same, np.arange(start + 1, start + 1_001))
    spilled = sum(f.stat().st_size for f in tmp_path.rglob("*.bin"))
    assert spilled <= 100 * DuplicateCounter.KEPT_PER_HASH * 24  # 100 spills, not 1 M rows of 16 bytes
    assert counter.finish() == (999_999, [2, 3, 4, 5, 6])
