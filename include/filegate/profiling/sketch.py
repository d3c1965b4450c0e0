"""Vectorised 64-bit hashing of Arrow arrays and the structures built on it, so that no per-row Python runs:

- `hash_values`: int/date/time values through splitmix64 (a bijection: exact), strings through a polynomial
  hash over their bytes computed with numpy prefix sums (collisions ~ n²/2⁶⁵: one in 300,000 files of 10 M rows);
- `DistinctSketch`: K-minimum-values distinct count, exact below K distinct values, ±1.6 % above;
- `KeySet`: exact "seen before?" over hashes, as sorted numpy runs merged like an LSM tree (8 bytes per key;
  running ids as intervals, in constant memory);
- `DuplicateCounter`: rows that repeat an earlier row, counted from row hashes kept in memory up to 1 M rows
  and spilled to disk buckets beyond, so the memory stays flat however large the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
PRIME = 0x100000001B3
INV_PRIME = pow(PRIME, -1, 1 << 64)
STRING_CHUNK_BYTES = 1 << 18  # 256 KB: the prefix sums stay in cache (twice as fast as 1 MB)
KMV_K = 4096
SPILL_BUCKETS = 64
MAX_RUN = 1 << 20  # runs stop merging at 1 M keys: a merge's temporary copies stay near 25 MB


def splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(U64, copy=True)
    z += U64(0x9E3779B97F4A7C15)
    z ^= z >> U64(30)
    z *= U64(0xBF58476D1CE4E5B9)
    z ^= z >> U64(27)
    z *= U64(0x94D049BB133111EB)
    z ^= z >> U64(31)
    return z


_POWERS: np.ndarray | None = None  # PRIME^(k+1) and INV_PRIME^k for k < one chunk: computed once, 4 MB
_INVERSE: np.ndarray | None = None
_LENGTH_MIX: np.ndarray | None = None  # splitmix64(length) for every length a chunk can hold: 2 MB


def _powers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    global _POWERS, _INVERSE, _LENGTH_MIX
    if _POWERS is None or _INVERSE is None or _LENGTH_MIX is None:
        _POWERS = np.cumprod(np.full(STRING_CHUNK_BYTES, PRIME, dtype=U64), dtype=U64)
        inverse = np.ones(STRING_CHUNK_BYTES + 1, dtype=U64)
        np.cumprod(np.full(STRING_CHUNK_BYTES, INV_PRIME, dtype=U64), dtype=U64, out=inverse[1:])
        _INVERSE = inverse
        _LENGTH_MIX = splitmix64(np.arange(STRING_CHUNK_BYTES + 1, dtype=U64))
    return _POWERS, _INVERSE, _LENGTH_MIX


def _string_hash(values: pa.Array) -> np.ndarray:
    if pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
        values = values.cast(pa.string() if pa.types.is_large_string(values.type) else pa.binary())
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1, offset=values.offset * 4)
    data_buffer = values.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    powers, inverse, length_mix = _powers()
    out = np.empty(n, dtype=U64)
    scratch = np.zeros(STRING_CHUNK_BYTES + 1, dtype=U64)  # one chunk's prefix sums, reused chunk after chunk
    row = 0
    while row < n:
        # Rows whose bytes fit one chunk; a single value longer than a chunk gets a digest of all its bytes.
        stop = int(np.searchsorted(offsets, offsets[row] + STRING_CHUNK_BYTES, side="right")) - 1
        stop = min(max(stop, row + 1), n)
        lo = int(offsets[row])
        if int(offsets[row + 1]) - lo > STRING_CHUNK_BYTES:
            digest = hashlib.blake2b(data[lo:int(offsets[row + 1])].tobytes(), digest_size=8).digest()
            out[row] = np.frombuffer(digest, dtype=U64)[0]
            row += 1
            continue
        hi = min(int(offsets[stop]), lo + STRING_CHUNK_BYTES)
        size = hi - lo
        prefix = scratch[: size + 1]
        terms = prefix[1:]
        np.multiply(data[lo:hi], powers[:size], out=terms)  # (byte + 1) · P^(k+1), without a widened copy
        terms += powers[:size]
        np.cumsum(terms, out=terms)
        starts = offsets[row:stop] - lo
        ends = offsets[row + 1:stop + 1] - lo
        raw = (prefix[ends] - prefix[starts]) * inverse[starts]
        # A row here holds at most a chunk's bytes: its length's mix is looked up (one gather, not seven passes).
        out[row:stop] = raw ^ length_mix[offsets[row + 1:stop + 1] - offsets[row:stop]]
        row = stop
    return splitmix64(out)


def hash_values(values: pa.Array | pa.ChunkedArray, *, exact_ints: bool = False,
                few_distinct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hashes, valid mask) for every value; null positions hash to 0 and are marked invalid.

    `exact_ints`: integers and dates are returned as their own bits (order kept, for exact key sets) instead of
    mixed (what sketches need). `few_distinct=False` skips the dictionary attempt for text known to be key-like."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    kind = values.type
    valid = np.ones(len(values), dtype=bool) if values.null_count == 0 else pc.is_valid(values).to_numpy(
        zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        hashes = _text_hash(values, few_distinct)
    elif pa.types.is_floating(kind):
        floats = pc.fill_null(values, 0.0).cast(pa.float64()).to_numpy(zero_copy_only=False) + 0.0  # -0.0 → 0.0
        hashes = splitmix64(floats.view(U64))
    elif pa.types.is_integer(kind) or pa.types.is_temporal(kind) or pa.types.is_boolean(kind):
        ints = pc.fill_null(_as_int64(values), 0).to_numpy(zero_copy_only=False)
        hashes = ints.view(U64).copy() if exact_ints else splitmix64(ints.view(U64))
    elif pa.types.is_decimal128(kind):
        hashes = _decimal_hash(values)
    else:  # anything else: its canonical text
        hashes = _string_hash(pc.fill_null(values.cast(pa.string()), ""))
    if values.null_count:
        hashes[~valid] = 0
    return hashes, valid


def _decimal_hash(values: pa.Array) -> np.ndarray:
    """A decimal128 is two 64-bit words (low, high): mixed from its bits, never through its text."""
    words = np.frombuffer(values.buffers()[1], dtype=U64, count=2 * len(values), offset=values.offset * 16)
    low, high = words[0::2], words[1::2]
    return splitmix64(low ^ splitmix64(high))


@dataclass(frozen=True)
class FewDistinct:
    """A text array with few distinct values as its dictionary (present values only), one code per row (-1 for
    null) and each dictionary entry's hash: distinct counts, top values and row hashes all come from it."""

    dictionary: pa.Array
    codes: np.ndarray
    hashes: np.ndarray

    @classmethod
    def of(cls, values: pa.Array) -> FewDistinct | None:
        """None unless the array is long enough and its distinct values are at most a quarter of its rows."""
        if len(values) < 1024:
            return None
        encoded = pc.dictionary_encode(values)
        if len(encoded.dictionary) * 4 > len(values):
            return None
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return cls(encoded.dictionary, codes, _string_hash(encoded.dictionary))

    def row_hashes(self) -> np.ndarray:
        hashes = self.hashes[self.codes]
        hashes[self.codes < 0] = 0
        return hashes


def _text_hash(values: pa.Array, try_dictionary: bool) -> np.ndarray:
    """Few distinct values (codes, statuses): hash the dictionary and take; else hash every value's bytes."""
    few = FewDistinct.of(values) if try_dictionary else None
    return few.row_hashes() if few is not None else _string_hash(values)


def _as_int64(values: pa.Array) -> pa.Array:
    kind = values.type
    if pa.types.is_boolean(kind):
        return values.cast(pa.int8()).cast(pa.int64())
    if pa.types.is_date32(kind) or pa.types.is_time32(kind):
        return values.view(pa.int32()).cast(pa.int64())
    if pa.types.is_temporal(kind):
        return values.view(pa.int64())
    return values.cast(pa.int64())


def sorted_unique(values: np.ndarray, *, runs: bool = False) -> np.ndarray:
    """np.unique by sorting (numpy's hash-based unique is several times slower on uint64 keys).

    `runs`: `values` is a few sorted runs laid end to end; numpy's stable sort (timsort) merges them in
    linear time instead of sorting from scratch."""
    if len(values) < 2:
        return values.copy()
    ordered = np.sort(values, kind="stable" if runs else None)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def combine(row_hash: np.ndarray | None, column_hash: np.ndarray) -> np.ndarray:
    """Folds one column's hashes into the row hashes (a polynomial with an odd multiplier: distinct rows of
    well-mixed column hashes collide with probability 2⁻⁶⁴). `mix` the result once all columns are in."""
    if row_hash is None:
        return column_hash.copy()
    row_hash *= U64(PRIME)
    row_hash += column_hash
    return row_hash


def mix(row_hash: np.ndarray) -> np.ndarray:
    return splitmix64(row_hash)


class DistinctSketch:
    """K minimum values: the K smallest distinct hashes seen; exact while fewer than K distinct values exist."""

    def __init__(self, k: int = KMV_K) -> None:
        self.k = k
        self.smallest = np.zeros(0, dtype=U64)

    def update(self, hashes: np.ndarray) -> None:
        if len(self.smallest) >= self.k:
            hashes = hashes[hashes < self.smallest[-1]]
        if len(hashes) == 0:
            return
        if len(hashes) > 4 * self.k:
            # Only the k smallest can survive: partition first, unless repeats among them leave fewer than k.
            smallest = sorted_unique(np.partition(hashes, self.k)[: self.k + 1])
            if len(smallest) > self.k:
                hashes = smallest
        merged = sorted_unique(np.concatenate([self.smallest, hashes]))
        self.smallest = merged[: self.k]

    @property
    def exact(self) -> bool:
        return len(self.smallest) < self.k

    def estimate(self) -> int:
        if self.exact:
            return len(self.smallest)
        return round((self.k - 1) / (float(self.smallest[-1]) / 2.0**64))


class KeySet:
    """Exact membership over uint64 keys: sorted runs, merged when a run reaches its elder's size; keys that
    arrive as consecutive ascending integers (running ids) are kept as intervals, in constant memory."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.interval_starts: list[int] = []
        self.interval_ends: list[int] = []  # inclusive
        self.size = 0
        self.largest: int | None = None

    def seen_before(self, keys: np.ndarray) -> np.ndarray:
        """Marks each key already seen (in an earlier batch, or earlier in this one) and remembers the rest."""
        repeated = np.zeros(len(keys), dtype=bool)
        if len(keys) == 0:
            return repeated
        if (self.largest is None or int(keys[0]) > self.largest) and bool(np.all(keys[1:] > keys[:-1])):
            # Ascending keys above all seen so far (a file's running ids): nothing to look up.
            if int(keys[-1]) - int(keys[0]) == len(keys) - 1:
                self._remember_interval(int(keys[0]), int(keys[-1]))
            else:
                self._remember(keys.copy())
            return repeated
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        in_order = np.zeros(len(keys), dtype=bool)
        in_order[1:] = ordered[1:] == ordered[:-1]
        for run in self.runs:
            # Sorted queries make the binary searches walk the run in order: cache-friendly, several times faster.
            at = np.searchsorted(run, ordered)
            at[at == len(run)] = len(run) - 1
            in_order |= run[at] == ordered
        if self.interval_starts:
            starts = np.array(self.interval_starts, dtype=U64)
            at = np.searchsorted(starts, ordered, side="right").astype(np.int64) - 1
            ends = np.array(self.interval_ends, dtype=U64)
            in_order |= (at >= 0) & (ordered <= ends[np.maximum(at, 0)])
        repeated[order] = in_order
        self._remember(ordered[~in_order])  # already sorted and distinct
        return repeated

    def _remember_interval(self, low: int, high: int) -> None:
        if self.interval_ends and self.interval_ends[-1] == low - 1:
            self.interval_ends[-1] = high
        else:
            self.interval_starts.append(low)
            self.interval_ends.append(high)
        self.largest = high
        self.size += high - low + 1

    def _remember(self, fresh: np.ndarray) -> None:
        if len(fresh) == 0:
            return
        self.largest = int(fresh[-1]) if self.largest is None else max(self.largest, int(fresh[-1]))
        self.size += len(fresh)
        self.runs.append(fresh)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]) \
                and len(self.runs[-2]) + len(self.runs[-1]) <= MAX_RUN:
            last = self.runs.pop()
            self.runs[-1] = sorted_unique(np.concatenate([self.runs[-1], last]), runs=True)


class DuplicateCounter:
    """Counts rows equal to an earlier row. Row hashes and numbers stay in memory up to `memory_rows` (16 MB);
    beyond that they go to disk buckets by their top bits, and `finish` reads one bucket at a time, so memory
    stays flat whatever the file's size. Equal rows share a hash and so a bucket: each spill keeps only the
    first `KEPT_PER_HASH` rows of a hash and a count for the rest, so a file of one row repeated millions of
    times spills a few entries, not millions."""

    buckets = SPILL_BUCKETS  # the top 6 bits of a row hash pick its bucket
    memory_rows = 1 << 20
    KEPT_PER_HASH = 8  # ≥ the samples `finish` names + 1: the first repeats are among each spill's first rows

    def __init__(self, work_dir: Path | None = None) -> None:
        self._work_dir = work_dir
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[Any] = []
        self._hashes: list[np.ndarray] = []
        self._numbers: list[np.ndarray] = []
        self._buffered = 0
        self.rows = 0

    def add(self, row_hashes: np.ndarray, row_numbers: np.ndarray) -> None:
        self._hashes.append(row_hashes)
        self._numbers.append(row_numbers.astype(np.int64, copy=False))
        self._buffered += len(row_hashes)
        self.rows += len(row_hashes)
        if self._buffered >= self.memory_rows:
            self._spill()

    def _take_buffer(self) -> tuple[np.ndarray, np.ndarray]:
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, U64)
        numbers = np.concatenate(self._numbers) if self._numbers else np.zeros(0, np.int64)
        self._hashes, self._numbers, self._buffered = [], [], 0
        return hashes, numbers

    def _spill(self) -> None:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="fg-dups-", dir=self._work_dir)
            self._files = [open(Path(self._dir.name) / f"{i}.bin", "wb") for i in range(self.buckets)]  # noqa: SIM115
        hashes, numbers = self._take_buffer()
        order = np.argsort(hashes, kind="stable")  # equal hashes together, each group in row order
        hashes, numbers = hashes[order], numbers[order]
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        sizes = np.diff(np.r_[starts, len(hashes)])
        rank = np.arange(len(hashes)) - np.repeat(starts, sizes)  # position of a row within its hash group
        keep = rank < self.KEPT_PER_HASH
        weights = np.ones(len(hashes), dtype=U64)
        # The last kept row of a big group stands for the rows dropped after it.
        big = sizes > self.KEPT_PER_HASH
        weights[starts[big] + self.KEPT_PER_HASH - 1] += (sizes[big] - self.KEPT_PER_HASH).astype(U64)
        triples = np.empty((int(keep.sum()), 3), dtype=U64)
        triples[:, 0], triples[:, 1], triples[:, 2] = hashes[keep], numbers[keep].view(U64), weights[keep]
        bucket = (triples[:, 0] >> U64(58)).astype(np.uint8)
        by_bucket = np.argsort(bucket, kind="stable")
        triples, bucket = triples[by_bucket], bucket[by_bucket]
        bounds = np.searchsorted(bucket, np.arange(self.buckets + 1))
        for i in range(self.buckets):
            if bounds[i + 1] > bounds[i]:
                triples[bounds[i]:bounds[i + 1]].tofile(self._files[i])

    def finish(self, samples: int = 5) -> tuple[int, list[int]]:
        """(rows repeating an earlier row, the first few of their row numbers)."""
        if self._dir is None:  # the whole file fitted in memory
            return _repeats(*self._take_buffer(), samples)
        self._spill()
        duplicates = 0
        sample_rows: list[int] = []
        for handle in self._files:
            handle.close()
        try:
            for i in range(self.buckets):
                triples = np.fromfile(Path(self._dir.name) / f"{i}.bin", dtype=U64).reshape(-1, 3)
                hashes, rows, weights = triples[:, 0], triples[:, 1].view(np.int64), triples[:, 2]
                duplicates += int(weights.sum()) - len(np.unique(hashes))
                sample_rows.extend(_repeats(hashes, rows, samples)[1])  # every bucket's first few hold the file's
        finally:
            self.close()
        return duplicates, sorted(sample_rows)[:samples]

    def close(self) -> None:
        self._hashes, self._numbers = [], []
        for handle in self._files:
            if not handle.closed:
                handle.close()
        if self._dir is not None:
            self._dir.cleanup()


def _repeats(hashes: np.ndarray, numbers: np.ndarray, samples: int) -> tuple[int, list[int]]:
    """Rows whose hash equals an earlier row's, and the first few of them. `numbers` ascend (file order)."""
    if len(hashes) < 2:
        return 0, []
    ordered = np.sort(hashes)
    count = int(np.count_nonzero(ordered[1:] == ordered[:-1]))
    if not count:
        return 0, []
    order = np.argsort(hashes, kind="stable")  # equal hashes keep file order: the first of each is the original
    repeat = hashes[order][1:] == hashes[order][:-1]
    return count, np.sort(numbers[order][1:][repeat])[:samples].tolist()
