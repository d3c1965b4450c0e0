"""Reads a file's valid rows (its Parquet outputs) and yields them in the target API's JSON shape, batch by batch.

Only one Parquet record batch and one API batch are in memory at a time: a file of any size streams through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from filegate.delivery.template import PayloadTemplate, to_json_value

__all__ = ["PayloadError", "iter_payload_batches", "to_json_value"]


class PayloadError(ValueError):
    """The processed output cannot fill the contract's payload template (e.g. a column it names is absent)."""


def iter_payload_batches(parquet_files: Iterable[Path], template: PayloadTemplate | Mapping[str, Any],
                         batch_size: int, meta: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Yields lists of at most `batch_size` records. Batch boundaries depend only on the rows and `batch_size`,
    so batch n of a re-run holds the same records as batch n of the first run (idempotency keys rely on it)."""
    # Imported here: `filegate.delivery` is also imported by the Airflow api-server (connections), which must
    # never load Arrow (a native crash there takes the whole UI down).
    import pyarrow.parquet as pq

    if not isinstance(template, PayloadTemplate):
        template = PayloadTemplate.compile(template)
    render = template.bind(meta)
    pending: list[dict[str, Any]] = []
    for path in parquet_files:
        parquet = pq.ParquetFile(path)
        missing = template.missing_columns(parquet.schema_arrow.names)
        if missing:
            raise PayloadError(f"the payload template reads column(s) {', '.join(missing)} that the processed "
                               f"output lacks; it has: {', '.join(parquet.schema_arrow.names)}. Fix "
                               "destinations.api.payload in the feed contract, then reprocess the file")
        columns = list(template.columns) or None
        for batch in parquet.iter_batches(batch_size=max(min(batch_size, 65_536), 1024), columns=columns):
            for row in batch.to_pylist():
                pending.append(render(row))
                if len(pending) == batch_size:
                    yield pending
                    pending = []
    if pending:
        yield pending
