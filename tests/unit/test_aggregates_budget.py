"""The aggregates Parquet fallback reads a bounded number of bytes per request, whatever the feed holds."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filegate.reporting import aggregates


class Body:
    def __init__(self, data: bytes, served: list[int]) -> None:
        self.data, self.served = data, served

    def read(self, amt: int | None = None) -> bytes:
        chunk = self.data if amt is None else self.data[:amt]
        self.served.append(len(chunk))
        return chunk


class FakeS3:
    """list_objects_v2 and get_object over in-memory objects; counts the bytes it serves."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        start = datetime(2026, 11, 1, tzinfo=UTC)
        self.objects = objects
        self.modified = {key: start + timedelta(hours=n) for n, key in enumerate(objects)}  # later = newer
        self.served: list[int] = []

    def get_paginator(self, name: str) -> Any:
        s3 = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k, "Size": len(v), "LastModified": s3.modified[k]}
                                      for k, v in s3.objects.items() if k.startswith(Prefix)]}]

        return Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": Body(self.objects[Key], self.served)}


def parquet(day: int, rows: int = 2000) -> bytes:
    buffer = io.BytesIO()
    table = pa.table({"seller_id": [f"S{i % 7}" for i in range(rows)], "day": [day] * rows,
                      "noise": [f"{day}-{i}-{'x' * 40}" for i in range(rows)]})
    pq.write_table(table, buffer, compression="none")
    return buffer.getvalue()


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3({f"processed/sales/day={d:02d}/part-{d}.parquet": parquet(d) for d in range(1, 11)})


def test_the_fallback_stops_at_the_byte_budget_and_says_so(s3: FakeS3) -> None:
    size = len(next(iter(s3.objects.values())))
    budget = 3 * size + size // 2  # room for three objects, not four
    found = aggregates.feed_aggregates("host=127.0.0.1 port=1 connect_timeout=1", s3, "b", "sales",
                                       filters={"seller_id": "S1"}, limit=5, max_bytes=budget)
    assert sum(s3.served) <= budget  # never more than the budget left S3
    assert found.available and found.source == "s3" and found.truncated
    assert {r["day"] for r in found.rows} == {10}  # the newest object first
    assert found.total == sum(1 for i in range(2000) if i % 7 == 1) * 3  # counted over the three read
    assert "read the newest 3 of 10 Parquet objects" in (found.reason or "")


def test_the_default_budget_bounds_a_feed_of_many_large_objects() -> None:
    """Fifty objects of 60 MB each: before, every one was read (3 GB per request)."""
    sizes = {f"processed/big/part-{n:02d}.parquet": 60 << 20 for n in range(50)}
    small = parquet(1, rows=10)

    class Listed(FakeS3):
        def get_paginator(self, name: str) -> Any:
            class Pages:
                def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                    start = datetime(2026, 11, 1, tzinfo=UTC)
                    return [{"Contents": [{"Key": k, "Size": v, "LastModified": start} for k, v in sizes.items()]}]

            return Pages()

        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            return {"Body": Body(small, self.served)}

    s3 = Listed({})
    with pytest.raises(aggregates.OutputTooLarge, match=r"larger than the 32\.0 MB this view reads per request"):
        aggregates.from_parquet(s3, "b", "big", filters={}, limit=10, offset=0)
    assert s3.served == []  # nothing was fetched at all


def test_everything_fits_no_flag(s3: FakeS3) -> None:
    found = aggregates.from_parquet(s3, "b", "sales", filters={}, limit=10, offset=0)
    assert found is not None and not found.truncated and found.reason is None and found.total == 20_000
