"""Runs one local file through parse → validate → transform → profile, writing Parquet and rejects locally.

Nothing here touches S3 or the status store: the same function serves Airflow workers, Lambda and the CLI.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filegate.contracts.model import Contract
from filegate.parsers.csv_reader import CsvReader, ParseError
from filegate.profiling.profile import TableProfile
from filegate.transforms.apply import apply_transforms
from filegate.transforms.expressions import ExpressionError
from filegate.validation.validator import (
    REASONS_COLUMN,
    ROW_COLUMN,
    FileRejected,
    Validator,
    rejects_from_bad_rows,
)

log = logging.getLogger(__name__)
ARRIVAL_PARTITION = "arrival_date"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY_S = 10.0


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
    schema: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        share = self.rows_rejected / self.rows_total if self.rows_total else 0.0
        return {
            "status": self.status,
            "reason": self.reason,
            "rows": {"total": self.rows_total, "valid": self.rows_valid, "rejected": self.rows_rejected,
                     "rejected_percent": round(100 * share, 3)},
            "schema": self.schema,
            "columns": self.column_stats,
            "issues": self.issues,
            "seconds": round(self.seconds, 3),
        }


def inert(value: str) -> str:
    """Keeps spreadsheet formulas from running when someone opens a quarantine CSV in Excel."""
    return "'" + value if value and value.startswith(FORMULA_PREFIXES) else value


class _RejectWriter:
    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow([ROW_COLUMN, *header, REASONS_COLUMN])
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        for record in table.to_pylist():
            self._writer.writerow([inert("" if v is None else str(v)) for v in record.values()])
            self.rows += 1

    def close(self) -> None:
        self._fh.close()


class _PartitionWriters:
    def __init__(self, folder: Path, column: str, fixed_value: str | None, compression: str) -> None:
        self.folder = folder
        self.column = column
        self.fixed_value = fixed_value
        self.compression = None if compression == "none" else compression
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.files: dict[str, Path] = {}

    def _writer(self, value: str, schema: pa.Schema) -> pq.ParquetWriter:
        if value not in self.writers:
            path = self.folder / f"part-{len(self.files):04d}.parquet"
            self.files[value] = path
            self.writers[value] = pq.ParquetWriter(path, schema, compression=self.compression)
        return self.writers[value]

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.fixed_value is not None:
            self._writer(self.fixed_value, table.schema).write_table(table)
            return
        keys = pc.cast(table[self.column], pa.string())
        for value in pc.unique(keys).to_pylist():
            part = table.filter(pc.is_null(keys) if value is None else pc.equal(keys, value))
            self._writer(value or "unknown", table.schema).write_table(part)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def run_engine(contract: Contract, path: Path, *, arrived: date, work_dir: Path,
               block_size: int | None = None) -> EngineResult:
    started = time.monotonic()
    reader = CsvReader(path, contract.format, **({"block_size": block_size} if block_size else {}))
    try:
        header = reader.read_header()
        validator = Validator(contract, header)
    except (ParseError, FileRejected) as exc:
        return EngineResult("quarantined", str(exc), seconds=time.monotonic() - started)

    partition_by = contract.destinations.parquet.partition_by
    parquet = _PartitionWriters(work_dir, partition_by or ARRIVAL_PARTITION,
                                None if partition_by else arrived.isoformat(),
                                contract.destinations.parquet.compression)
    rejects = _RejectWriter(work_dir / "rejected.csv", header)
    profile = TableProfile()
    schema: dict[str, str] = {}
    row_no, last_log = 1, time.monotonic()
    try:
        for batch in reader.batches():
            checked = validator.validate(batch, first_row=row_no)
            row_no += batch.num_rows
            valid = apply_transforms(contract, checked.valid)
            schema = schema or {f.name: str(f.type) for f in valid.schema}
            parquet.write(valid)
            profile.update(valid)
            rejects.write(checked.rejected)
            if time.monotonic() - last_log > PROGRESS_EVERY_S:
                log.info("%s: %d rows read, %d rejected so far", path.name, row_no - 1, rejects.rows)
                last_log = time.monotonic()
        bad_rows = reader.bad_rows
        if bad_rows:
            rejects.write(rejects_from_bad_rows(header, [(b.line, b.reason, b.text) for b in bad_rows]))
    except ParseError as exc:
        return EngineResult("quarantined", f"{exc} (after {row_no - 1} rows)", rows_total=row_no - 1,
                            seconds=time.monotonic() - started)
    except (ExpressionError, pa.ArrowInvalid) as exc:
        return EngineResult("quarantined", f"a transform of feed {contract.name} failed: {exc}",
                            seconds=time.monotonic() - started)
    finally:
        parquet.close()
        rejects.close()

    rows_total = validator.rows_total + len(reader.bad_rows)
    rows_rejected = rejects.rows
    issues = validator.issue_summary()
    if reader.bad_rows:
        issues.insert(0, {"column": "*", "rule": "field_count", "count": len(reader.bad_rows),
                          "percent": round(100.0 * len(reader.bad_rows) / max(rows_total, 1), 3),
                          "sample_rows": [b.line for b in reader.bad_rows[:5]]})
    result = EngineResult(
        status="processed", reason=None, rows_total=rows_total, rows_valid=rows_total - rows_rejected,
        rows_rejected=rows_rejected, parquet_files=parquet.files, partition_column=parquet.column,
        rejected_file=rejects.path if rows_rejected else None, issues=issues,
        column_stats=profile.as_dict(), schema=schema, seconds=time.monotonic() - started,
    )
    limit = contract.thresholds.max_rejected_share
    if rows_total == 0:
        result.status, result.reason = "quarantined", "the file has a header but no data rows"
    elif rows_rejected / rows_total > limit:
        top = "; ".join(f"{i['column']} {i['rule']} x{i['count']}" for i in issues[:3])
        result.status = "quarantined"
        result.reason = (f"{rows_rejected} of {rows_total} rows ({100 * rows_rejected / rows_total:.1f}%) were "
                         f"rejected, above the feed's limit of {100 * limit:g}% — most common: {top}")
    log.info("%s: %s, %d rows (%d valid, %d rejected) in %.2f s", path.name, result.status, rows_total,
             result.rows_valid, rows_rejected, result.seconds)
    return result
