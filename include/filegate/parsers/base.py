"""What every reader shares: the error a person can act on, rows that could not be split, the reader protocol."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pyarrow as pa

# pyarrow's CSV reader reads up to 32 blocks ahead of its consumer: small blocks keep that readahead (and so
# the peak memory) near 32 MB whatever the file's size.
DEFAULT_BLOCK_SIZE = 1 << 20
# ...while the engine's per-batch work (a few hundred Arrow calls) is cheaper per row on bigger batches: the
# readers' small batches are joined up to this size before validation (1 MB batches cost 30 % more time).
BATCH_BYTES = 4 << 20
T = TypeVar("T")
BATCH_ROWS = 65_536  # readers that build batches in Python (JSON, xlsx) flush at this many rows


MAX_REASON_CHARS = 500
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_ESCAPES.update({c: f"\\u{c:04x}" for c in [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                             *range(0xD800, 0xE000)]})


def shown(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` as one printable line of at most `limit` characters: control characters (ESC sequences, line
    breaks, bidi overrides, lone surrogates) escaped, the rest cut with an ellipsis."""
    text = text.translate(_ESCAPES)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def size_text(size: int) -> str:
    """A byte limit as a person reads it: 64 MiB, 1 MiB, 4,096 bytes."""
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size:,} bytes"


class ParseError(ValueError):
    """The file as a whole cannot be read; the message says why in terms a person can act on (one line, at most
    MAX_REASON_CHARS characters, control characters escaped)."""

    def __init__(self, message: str) -> None:
        super().__init__(shown(message))


@dataclass
class BadRow:
    """A record the reader could not turn into the header's fields. `line` is the physical line when known."""

    line: int | None
    reason: str
    text: str


class Reader(Protocol):
    """Yields record batches whose columns are the header's names, every value as text (never null)."""

    header: list[str]
    bad_rows: list[BadRow]

    def read_header(self) -> list[str]: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...


def check_header_names(header: list[str], max_columns: int) -> list[str]:
    """Header names must be non-empty and unique, and not absurdly many (a binary or one-line file)."""
    if len(header) > max_columns:
        raise ParseError(f"the header has {len(header):,} columns, more than the limit of {max_columns:,} "
                         "(format.max_columns): is this the right file, or is it one enormous line?")
    if not header or all(not name for name in header):
        raise ParseError("the first line is blank: a header row is expected")
    duplicates = sorted(_duplicates(header))
    if duplicates:
        raise ParseError("duplicate column names in the header: "
                         + ", ".join(shown(name, 60) for name in duplicates[:20]))
    if "" in header:
        raise ParseError(f"the header has an empty column name (position {header.index('') + 1})")
    return header


def _duplicates(names: list[str]) -> set[str]:
    seen: set[str] = set()
    dupes: set[str] = set()
    for name in names:
        (dupes if name in seen else seen).add(name)
    return dupes


def text_batch(header: list[str], columns: list[list[str]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(values, pa.string()) for values in columns], names=header)


class TextRows:
    """Rows of text cells gathered column by column, for the readers that build batches in Python (JSON,
    xlsx): `add` hands back a batch once BATCH_ROWS rows or BATCH_BYTES characters are held, so a batch of
    huge records stays bounded in memory like a batch of small ones; `rest` hands back what is left."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self._clear()

    def _clear(self) -> None:
        self._columns: list[list[str]] = [[] for _ in self.header]
        self._rows = self._chars = 0

    def add(self, cells: list[str]) -> pa.RecordBatch | None:
        for values, cell in zip(self._columns, cells, strict=True):
            values.append(cell)
        self._rows += 1
        self._chars += sum(map(len, cells))
        return self.rest() if self._rows == BATCH_ROWS or self._chars >= BATCH_BYTES else None

    def rest(self) -> pa.RecordBatch | None:
        if not self._rows:
            return None
        batch = text_batch(self.header, self._columns)
        self._clear()
        return batch


def coalesce(batches: Iterable[pa.RecordBatch], target_bytes: int = BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """Joins consecutive batches until they hold `target_bytes`; a batch already that big passes as it is.
    The first batch passes alone, so that validation starts while the next blocks are still being read."""
    pending: list[pa.RecordBatch] = []
    size = 0
    first = True
    for batch in batches:
        pending.append(batch)
        size += batch.nbytes
        if size >= target_bytes or first:
            first = False
            yield _joined(pending)
            pending, size = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    # One copy per column; a Table's combine_chunks takes five times as long for the same result.
    return pa.concat_batches(batches)


_DONE = object()


def prefetch(make: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[T]:
    """Runs `make()`'s iterator in a thread, at most `depth` items ahead of the consumer.

    pyarrow's own threaded CSV reader parses ahead without bound when its consumer is slower (the whole file
    ends up in memory); a single-threaded pyarrow reader behind this bounded queue keeps parsing in parallel
    with validation while memory stays flat."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in make():
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(_Failure(exc))

    worker = threading.Thread(target=produce, name="filegate-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.1)
        worker.join()


@dataclass
class _Failure:
    error: BaseException
