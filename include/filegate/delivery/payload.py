"""Maps valid rows (Parquet outputs) to the target API's JSON shape, in batches."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def to_json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def iter_payload_batches(parquet_files: Iterable[Path], mapping: dict[str, str], batch_size: int
                         ) -> Iterator[list[dict[str, Any]]]:
    """Yields lists of at most `batch_size` records, reading Parquet in bounded row groups."""
    pending: list[dict[str, Any]] = []
    for path in parquet_files:
        parquet = pq.ParquetFile(path)
        columns = list(mapping.values()) if mapping else None
        for batch in parquet.iter_batches(batch_size=max(batch_size, 1024), columns=columns):
            for row in batch.to_pylist():
                if mapping:
                    pending.append({field: to_json_value(row[column]) for field, column in mapping.items()})
                else:
                    pending.append({k: to_json_value(v) for k, v in row.items()})
                if len(pending) == batch_size:
                    yield pending
                    pending = []
    if pending:
        yield pending
