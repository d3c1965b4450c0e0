"""Runs one local file through unpack → parse → validate → profile → transform (→ aggregate), writing Parquet
and rejects locally.

Nothing here touches S3 or a database: the same function serves Airflow workers, Lambda, the CLI and the bench.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filegate.contracts.model import Contract, Format
from filegate.expressions import ExpressionError
from filegate.parsers.base import ParseError, Reader, shown
from filegate.parsers.registry import open_reader
from filegate.parsers.source import Prepared, prepare
from filegate.profiling.profile import FORMULA_PREFIXES, TableProfile, inert
from filegate.transforms.aggregate import AggregateError, Aggregator
from filegate.transforms.apply import apply_transforms
from filegate.validation.inference import SchemaInference
from filegate.validation.validator import (
    REASONS_COLUMN,
    ROW_COLUMN,
    BatchResult,
    FileRejected,
    Validator,
    rejects_from_bad_rows,
)

__all__ = ["ARRIVAL_PARTITION", "FORMULA_PREFIXES", "EngineResult", "inert", "run_engine"]

log = logging.getLogger(__name__)
ARRIVAL_PARTITION = "arrival_date"
PROGRESS_EVERY_S = 10.0
PIPELINE_DEPTH = 2


@dataclass
class EngineResult:
    status: str  # "processed" or "quarantined"
    reason: str | None
    rows_total: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    parquet_files: dict[str, Path] = field(default_factory=dict)  # partition value -> local file
    partition_column: str = ARRIVAL_PARTITION
    rejected_file: Path | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    column_stats: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, str] = field(default_factory=dict)  # the output's columns and Arrow types
    seconds: float = 0.0
    inferred_schema: dict[str, Any] | None = None  # feeds without declared columns: {column: {type, nullable}}
    rows_output: int = 0  # rows written to Parquet (after filter/aggregate)
    duplicate_rows: int = 0
    # The mergeable profile behind column_stats (split Lambda runs merge the parts'); not part of summary().
    profile: Any = field(default=None, repr=False, compare=False)
    source: dict[str, Any] = field(default_factory=dict)  # format, encoding, delimiter, packing as read
    # The file's columns as read, in order: {name, type, nullable, declared} (filegate.schema_drift), and how
    # they differ from the feed's current schema version (filegate.pipeline.schema_check).
    file_schema: list[dict[str, Any]] = field(default_factory=list)
    schema_drift: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        share = self.rows_rejected / self.rows_total if self.rows_total else 0.0
        return {
            "status": self.status,
            "reason": self.reason,
            "rows": {"total": self.rows_total, "valid": self.rows_valid, "rejected": self.rows_rejected,
                     "rejected_percent": round(100 * share, 3)},
            "rows_output": self.rows_output,
            "duplicate_rows": self.duplicate_rows,
            "source": self.source,
            "schema": self.schema,
            "inferred_schema": self.inferred_schema,
            "file_schema": self.file_schema,
            "schema_drift": self.schema_drift,
            "columns": self.column_stats,
            "issues": self.issues,
            "seconds": round(self.seconds, 3),
        }


class _RejectWriter:
    """Rejected rows with their reasons as CSV; every cell is made inert against spreadsheet formulas."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow([ROW_COLUMN, *(inert(h) for h in header), REASONS_COLUMN])
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        # By position: the file's header may itself hold a _row or _reasons column.
        for record in zip(*(column.to_pylist() for column in table.columns), strict=True):
            self._writer.writerow([inert("" if v is None else str(v).replace("\x00", "\\x00"))
                                   for v in record])
            self.rows += 1

    def close(self) -> None:
        self._fh.close()


class _PartitionWriters:
    """One Parquet file per partition value. Rows are split by a sort + run-length pass (not one filter per
    value), and buffered per partition so that a file spread over hundreds of days still gets row groups of a
    useful size; the buffer is capped in rows and in bytes (rows may be megabytes each), so memory stays flat."""

    ROW_GROUP_ROWS = 128_000
    MAX_BUFFERED_ROWS = 512_000
    ROW_GROUP_BYTES = 64 << 20
    MAX_BUFFERED_BYTES = 128 << 20

    def __init__(self, folder: Path, column: str, fixed_value: str | None, compression: str) -> None:
        self.folder = folder
        self.column = column
        self.fixed_value = fixed_value
        self.compression = None if compression == "none" else compression
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.files: dict[str, Path] = {}
        self.buffers: dict[str, list[pa.Table]] = {}
        self.buffered: dict[str, int] = {}
        self.buffered_bytes: dict[str, int] = {}
        self.rows = 0
        self.dictionary_columns: list[str] | None = None  # chosen from the first row group written

    def _flush(self, value: str) -> None:
        parts = self.buffers.pop(value, [])
        self.buffered.pop(value, None)
        self.buffered_bytes.pop(value, None)
        if not parts:
            return
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if value not in self.writers:
            path = self.folder / f"part-{len(self.files):04d}.parquet"
            self.files[value] = path
            if self.dictionary_columns is None:
                self.dictionary_columns = _dictionary_columns(table)
            self.writers[value] = pq.ParquetWriter(path, table.schema, compression=self.compression,
                                                   use_dictionary=self.dictionary_columns)
        self.writers[value].write_table(table, row_group_size=max(table.num_rows, 1))

    def _add(self, value: str, table: pa.Table) -> None:
        self.buffers.setdefault(value, []).append(table)
        self.buffered[value] = self.buffered.get(value, 0) + table.num_rows
        self.buffered_bytes[value] = self.buffered_bytes.get(value, 0) + table.nbytes
        if self.buffered[value] >= self.ROW_GROUP_ROWS or self.buffered_bytes[value] >= self.ROW_GROUP_BYTES:
            self._flush(value)
        while sum(self.buffered.values()) > self.MAX_BUFFERED_ROWS:
            self._flush(max(self.buffered, key=self.buffered.__getitem__))
        while sum(self.buffered_bytes.values()) > self.MAX_BUFFERED_BYTES:
            self._flush(max(self.buffered_bytes, key=self.buffered_bytes.__getitem__))

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self.fixed_value is not None:
            self._add(self.fixed_value, table)
            return
        keys = table[self.column]
        if pa.types.is_timestamp(keys.type):
            keys = pc.cast(keys, pa.date32())  # partition by the day, not the instant
        order = pc.sort_indices(keys)
        table = table.take(order)
        runs = pc.run_end_encode(pc.cast(keys.take(order), pa.string()))
        if isinstance(runs, pa.ChunkedArray):
            runs = runs.combine_chunks()
        start = 0
        for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            self._add(value or "unknown", table.slice(start, end - start))
            start = end

    def close(self) -> None:
        """Writes what is buffered and closes every file; closing again does nothing."""
        for value in list(self.buffers):
            self._flush(value)
        for writer in self.writers.values():
            writer.close()

    def abort(self) -> None:
        self.buffers.clear()
        self.buffered.clear()
        self.buffered_bytes.clear()
        for writer in self.writers.values():
            writer.close()


DICTIONARY_MAX_SHARE = 0.1


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Columns that repeat their values (codes, dates, statuses) get Parquet dictionary encoding. On key-like
    columns Parquet builds a dictionary, finds it too big and falls back to plain encoding anyway: skipping
    that saves a third of the writing time, and the files come out smaller."""
    sample = table.slice(0, min(table.num_rows, 65_536))
    limit = max(DICTIONARY_MAX_SHARE * sample.num_rows, 16)
    return [name for name in table.column_names
            if (pc.count_distinct(sample[name]).as_py() or 0) <= limit]


def _quarantined(reason: str, started: float, **fields: Any) -> EngineResult:
    """The file's reason is one line of at most 500 characters, control characters (from header or member
    names) escaped: it is stored as file.error, printed, and sent in alerts."""
    return EngineResult("quarantined", shown(reason), seconds=time.monotonic() - started, **fields)


def run_engine(contract: Contract, path: Path, *, arrived: date, work_dir: Path,
               block_size: int | None = None, name: str | None = None) -> EngineResult:
    """`name` is the file's delivered name (for format detection by extension); default `path.name`."""
    started = time.monotonic()
    names = [c.name for c in contract.columns] or None
    source: dict[str, Any] = {}
    inferred: dict[str, Any] | None = None
    try:
        prepared = prepare(path, contract.format, work_dir, name)
        if not contract.columns:
            read_once = _run_reading_once(contract, prepared, arrived=arrived, work_dir=work_dir,
                                          block_size=block_size, started=started)
            if read_once is not None:
                return read_once
        reader, fmt = open_reader(prepared, contract.format, names=names, block_size=block_size)
        header = reader.read_header()
        columns = None
        if not contract.columns:
            inference = SchemaInference(header, contract.null_markers())
            for batch in reader.batches():
                inference.update(batch)
            columns = inference.columns()
            inferred = inference.as_dict()
            reader, fmt = open_reader(prepared, contract.format, names=names, block_size=block_size)
            reader.read_header()
        source = _source_of(prepared, fmt, reader)
        validator = Validator(contract, header, columns)
    except (ParseError, FileRejected) as exc:
        return _quarantined(str(exc), started, source=source, inferred_schema=inferred)
    result = _run(contract, reader, validator, header, arrived=arrived, work_dir=work_dir, started=started,
                  source=source, inferred=inferred)
    result.file_schema = _file_schema(validator, declared=columns is None)
    return result


def _source_of(prepared: Prepared, fmt: Format, reader: Reader) -> dict[str, Any]:
    """What the file was read as: its format, packing and name, and the encoding and delimiter the reader found."""
    return {"format": fmt.type, "packed": prepared.packed, "name": prepared.name,
            **{k: v for k in ("encoding", "delimiter") if (v := getattr(reader, k, None))}}


class _SchemaChanged(Exception):
    """A batch would change the schema inferred from the batches before it."""


class _FirstBatchAgain:
    """A reader whose first batch was read already: that one, then the rest. `exhausted`: all were read."""

    def __init__(self, reader: Reader, first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch]) -> None:
        self.header = reader.header
        self.bad_rows = reader.bad_rows  # the same list: the reader appends to it as it reads
        self._first, self._rest = first, rest
        self.exhausted = False

    def read_header(self) -> list[str]:
        return self.header

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self._first is not None:
            yield self._first
        yield from self._rest
        self.exhausted = True


class _SchemaCheckingValidator(Validator):
    """Validates each batch with the schema inferred from the first, then checks that the batch leaves that
    schema as it is (`SchemaInference.fits`, which a batch without rejected rows passes almost for free)."""

    def __init__(self, contract: Contract, header: list[str], inference: SchemaInference, first_rows: int) -> None:
        super().__init__(contract, header, inference.columns())
        self.inference, self.first_rows = inference, first_rows

    def validate(self, batch: pa.RecordBatch, first_row: int) -> BatchResult:
        result = super().validate(batch, first_row)
        if first_row > self.first_rows and not self.inference.fits(batch, validated_clean=not result.rejected.num_rows):
            raise _SchemaChanged
        return result


def _run_reading_once(contract: Contract, prepared: Prepared, *, arrived: date, work_dir: Path,
                      block_size: int | None, started: float) -> EngineResult | None:
    """A file without declared columns in one read: the schema inferred from the first batch, each later batch
    checked against it as it is validated (most files keep one type per column throughout). None, with what
    it wrote removed, unless the whole file was read and fit that schema: the caller then reads the file twice
    (infer from all of it, then validate), as it must when a late value changes a type. Whenever this returns
    a result it is the one the two reads give, as the schema is the same and so is every step after it."""
    before = set(work_dir.rglob("*"))
    try:
        reader, fmt = open_reader(prepared, contract.format, names=None, block_size=block_size)
        header = reader.read_header()
        rest = iter(reader.batches())
        first = next(rest, None)
    except (ParseError, FileRejected) as exc:  # where the two reads meet it too, and say so in these words
        return _quarantined(str(exc), started, source={}, inferred_schema=None)
    inference = SchemaInference(header, contract.null_markers())
    if first is not None:
        inference.update(first)
    try:
        validator = _SchemaCheckingValidator(contract, header, inference, first.num_rows if first else 0)
    except FileRejected:
        return None  # the two reads read the whole file first: a parse error later on would come first
    source = _source_of(prepared, fmt, reader)
    checked = _FirstBatchAgain(reader, first, rest)
    try:
        result = _run(contract, checked, validator, header, arrived=arrived, work_dir=work_dir, started=started,
                      source=source, inferred=inference.as_dict())
    except _SchemaChanged:
        result = None
    if result is None or not checked.exhausted:
        log.info("reading the file twice (infer, then validate): %s", "a later batch changes the schema inferred "
                 "from the first" if result is None else f"{result.status} before its end")
        _remove_new_files(work_dir, before)
        return None
    result.file_schema = _file_schema(validator, declared=False)
    return result


def _remove_new_files(work_dir: Path, before: set[Path]) -> None:
    for path in sorted(set(work_dir.rglob("*")) - before, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # what stays is not listed in the result, so never delivered
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()


def _file_schema(validator: Validator, *, declared: bool) -> list[dict[str, Any]]:
    """The file's columns in its own order: declared (or inferred) types; extra columns are kept as text."""
    typed = {c.name: c for c in validator.columns}
    out = []
    for name in validator.header:
        column = typed.get(name)
        out.append({"name": name, "type": column.type if column else "string",
                    "nullable": column.nullable if column else True, "declared": declared and column is not None})
    return out


def _run(contract: Contract, reader: Reader, validator: Validator, header: list[str], *, arrived: date,
         work_dir: Path, started: float, source: dict[str, Any], inferred: dict[str, Any] | None) -> EngineResult:
    partition_by = contract.destinations.parquet.partition_by
    parquet_dir = work_dir / "parquet"
    parquet_dir.mkdir(exist_ok=True)
    parquet = _PartitionWriters(parquet_dir, partition_by or ARRIVAL_PARTITION,
                                None if partition_by else arrived.isoformat(),
                                contract.destinations.parquet.compression)
    rejects = _RejectWriter(work_dir / "rejected.csv", header)
    # Rows that passed a non-null unique column's check all differ: no duplicate-row pass needed.
    profile = TableProfile(work_dir=work_dir,
                           distinct_rows=any(c.unique and not c.nullable for c in validator.columns))
    aggregate = contract.aggregate
    aggregator = Aggregator(aggregate) if aggregate else None
    schema: dict[str, str] = {}
    row_no, last_log = 1, time.monotonic()
    # Profiling and Parquet writing run beside validation (numpy and Arrow release the GIL). Each stage has one
    # thread, so its batches stay in order; up to PIPELINE_DEPTH batches wait per stage, which absorbs the
    # stages' uneven pace while memory stays bounded.
    profiling = ThreadPoolExecutor(max_workers=1, thread_name_prefix="filegate-profile")
    writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="filegate-parquet")
    in_flight: deque[Future[None]] = deque()
    try:
        for batch in reader.batches():
            checked = validator.validate(batch, first_row=row_no)
            row_no += batch.num_rows
            valid = apply_transforms(contract, checked.valid)
            while len(in_flight) >= 2 * PIPELINE_DEPTH:
                in_flight.popleft().result()
            in_flight.append(profiling.submit(profile.update, checked.valid, checked.valid_rows, checked.markers))
            if aggregator is not None:
                aggregator.update(valid)
            else:
                schema = schema or {f.name: str(f.type) for f in valid.schema}
                in_flight.append(writing.submit(parquet.write, valid))
            rejects.write(checked.rejected)
            if time.monotonic() - last_log > PROGRESS_EVERY_S:
                log.info("%d rows read, %d rejected so far", row_no - 1, rejects.rows)
                last_log = time.monotonic()
        _drain(in_flight)
        if aggregator is not None:
            totals = aggregator.finish()
            if totals is not None:
                schema = {f.name: str(f.type) for f in totals.schema}
                parquet.write(totals)
        if reader.bad_rows:
            rejects.write(rejects_from_bad_rows(header, [(b.line, b.reason, b.text) for b in reader.bad_rows]))
        # The duplicate count's final sort and the last row groups' writing overlap too.
        in_flight.extend([profiling.submit(profile.finish), writing.submit(parquet.close)])
        _drain(in_flight)
    except ParseError as exc:
        return _quarantined(f"{exc} (after {row_no - 1} rows)", started, rows_total=row_no - 1, source=source,
                            inferred_schema=inferred)
    except FileRejected as exc:
        return _quarantined(str(exc), started, source=source, inferred_schema=inferred)
    except (ExpressionError, AggregateError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        return _quarantined(f"a transform of feed {contract.name} failed: {exc}", started, source=source,
                            inferred_schema=inferred)
    finally:
        for future in in_flight:
            future.cancel()
        profiling.shutdown(wait=True)
        writing.shutdown(wait=True)
        parquet.close()
        rejects.close()
        profile.close()

    bad_rows = reader.bad_rows
    rows_total = validator.rows_total + len(bad_rows)
    rows_rejected = rejects.rows
    issues = validator.issue_summary()
    if bad_rows:
        rule = "field_count" if bad_rows[0].reason.startswith("expected ") else "unreadable"
        issues.insert(0, _issue("*", rule, len(bad_rows), rows_total, [b.line for b in bad_rows[:5]],
                                example=bad_rows[0].reason))
    if profile.duplicate_rows:
        issues.append(_issue("*", "duplicate_row", profile.duplicate_rows, rows_total, profile.duplicate_samples))
    for name, stats in profile.as_dict().items():
        if stats["nulls"]:
            issues.append(_issue(name, "missing", stats["nulls"], rows_total, []))
    result = EngineResult(
        status="processed", reason=None, rows_total=rows_total, rows_valid=rows_total - rows_rejected,
        rows_rejected=rows_rejected, parquet_files=parquet.files, partition_column=parquet.column,
        rejected_file=rejects.path if rows_rejected else None, issues=issues,
        column_stats=profile.as_dict(), schema=schema, seconds=0.0, inferred_schema=inferred,
        rows_output=parquet.rows, duplicate_rows=profile.duplicate_rows, source=source, profile=profile,
    )
    reason = _file_rule_failure(contract, validator, result)
    if reason:
        result.status, result.reason = "quarantined", reason
    result.seconds = time.monotonic() - started
    log.info("%s, %d rows (%d valid, %d rejected) in %.2f s", result.status, rows_total, result.rows_valid,
             rows_rejected, result.seconds)
    return result


def _drain(in_flight: deque[Future[None]]) -> None:
    while in_flight:
        in_flight.popleft().result()


def _issue(column: str, rule: str, count: int, total: int, samples: list[int | None], **extra: Any) -> dict[str, Any]:
    return {"column": column, "rule": rule, "count": count, "percent": round(100.0 * count / max(total, 1), 3),
            "sample_rows": [s for s in samples if s is not None], **extra}


def _file_rule_failure(contract: Contract, validator: Validator, result: EngineResult) -> str | None:
    """The file-level verdict: empty, too few/many rows, out of order, too many duplicates or rejected rows."""
    rules = contract.file_rules
    total, rejected = result.rows_total, result.rows_rejected
    if total == 0:
        return "the file has a header but no data rows"
    if rules.min_rows is not None and total < rules.min_rows:
        return f"the file has {total} rows, fewer than the feed's minimum of {rules.min_rows} (file_rules.min_rows)"
    if rules.max_rows is not None and total > rules.max_rows:
        return f"the file has {total} rows, more than the feed's maximum of {rules.max_rows} (file_rules.max_rows)"
    if validator.sort is not None and validator.sort.violations:
        return (f"{validator.sort.first_violation} ({validator.sort.violations} row(s) out of order; "
                "file_rules.sorted_by)")
    if rules.max_duplicate_share is not None and result.rows_valid:
        share = result.duplicate_rows / result.rows_valid
        if share > rules.max_duplicate_share:
            return (f"{result.duplicate_rows} of {result.rows_valid} rows ({100 * share:.1f}%) repeat an earlier row "
                    f"exactly, above the feed's limit of {100 * rules.max_duplicate_share:g}% "
                    "(file_rules.max_duplicate_share)")
    limit = contract.thresholds.max_rejected_share
    if rejected / total > limit:
        blocking = [i for i in result.issues if i["rule"] not in {"missing", "duplicate_row"}]
        top = "; ".join(f"{i['column']} {i['rule']} x{i['count']}" for i in blocking[:3])
        return (f"{rejected} of {total} rows ({100 * rejected / total:.1f}%) were rejected, above the feed's "
                f"limit of {100 * limit:g}% — most common: {top}")
    return None
