"""The Parquet read behind a feed's aggregates, run as `python -m filegate.reporting.parquet_scan` in a child of
the api-server (reporting/isolated.py says why): never import this module's Arrow code in the api-server itself.

Request (stdin): {"paths": [local Parquet files, newest first], "filters": {column: text}, "limit", "offset"}.
Result: {"columns", "rows" (the page, JSON-ready), "matched" (rows matching the filters over all the files)}.
A filter names a column the output lacks: ValueError (the API answers 422).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

BATCH_ROWS = 8192


def _json_value(value: Any) -> Any:
    # The answer crosses a pipe as JSON: give values the form the API's own serializer would.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def scan(paths: list[str], *, filters: dict[str, str], limit: int, offset: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa.set_cpu_count(1)  # one core of the api-server's host at most
    pa.set_io_thread_count(1)
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    wanted = offset + limit
    matched = 0
    for path in paths:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        columns = columns or names
        unknown = sorted(set(filters) - set(names))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; the output has {', '.join(names)}")
        if not filters:
            total = parquet.metadata.num_rows  # counted from the footer: only the page's rows are decoded
            seen = matched
            if seen < wanted and seen + total > offset:
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                    first, last = max(offset - seen, 0), min(batch.num_rows, wanted - seen)
                    if first < last:
                        rows += batch.slice(first, last - first).to_pylist()
                    seen += batch.num_rows
                    if seen >= wanted:
                        break
            matched += total
            continue
        # Once the page is full, only the filter columns are read, to count the rest.
        read = None if matched < wanted else list(filters)
        wants = list(filters.values())
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=read):
            values = [batch.column(name).to_pylist() for name in filters]
            hits = [i for i, row in enumerate(zip(*values, strict=True))
                    if all(str(v) == want for v, want in zip(row, wants, strict=True))]
            take = hits[max(offset - matched, 0):max(wanted - matched, 0)]
            if take and read is None:
                rows += batch.take(pa.array(take, pa.int64())).to_pylist()
            matched += len(hits)
    return {"columns": columns, "rows": [{k: _json_value(v) for k, v in r.items()} for r in rows],
            "matched": matched}


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    return scan(list(request["paths"]), filters=dict(request.get("filters") or {}), limit=int(request["limit"]),
                offset=int(request["offset"]))


if __name__ == "__main__":
    from filegate.reporting.isolated import child_main

    child_main(_handle)
