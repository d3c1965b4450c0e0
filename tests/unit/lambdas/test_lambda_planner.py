"""Byte ranges for split processing start at record boundaries, never inside a quoted field."""

from __future__ import annotations

import csv
import gzip
import io
import random

import pytest

from filegate.contracts.model import Contract
from filegate.pipeline.parts import contract_blocks_split, plan_ranges

CONTRACT = {"name": "lines", "description": "x", "format": {"type": "csv", "encoding": "utf-8", "delimiter": ","},
            "schema": {"columns": [{"name": "id", "type": "int"}, {"name": "note"}, {"name": "amount"}]}}


def _csv(rows: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "note", "amount"])
    for i in range(rows):
        note = rnd.choice(["plain", "with, comma", "two\nlines", 'say ""hi""\nthere', "", "x" * rnd.randint(0, 40)])
        writer.writerow([i, note, f"{rnd.uniform(0, 99):.2f}"])
    return out.getvalue().encode()


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(("seed", "part_bytes", "chunk"), [(1, 500, 7), (2, 1000, 4096), (3, 333, 1), (4, 5000, 64)])
def test_parts_reassemble_into_exactly_the_records_of_the_whole(seed: int, part_bytes: int, chunk: int) -> None:
    data = _csv(400, seed)
    plan = plan_ranges(_chunks(data, chunk), Contract.model_validate(CONTRACT), part_bytes=part_bytes)
    assert len(plan.parts) > 1, plan.reason
    header = data[:plan.header_end]
    assert header == b"id,note,amount\n"
    assert plan.parts[0].start == plan.header_end and plan.parts[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(plan.parts, plan.parts[1:], strict=False))
    records = []
    for part in plan.parts:
        assert data[part.start - 1:part.start] == b"\n"
        rows = list(csv.reader(io.StringIO((header + data[part.start:part.end]).decode())))
        assert rows[0] == ["id", "note", "amount"]
        records += rows[1:]
    assert records == list(csv.reader(io.StringIO(data.decode())))[1:]


def test_plan_carries_size_and_sha256() -> None:
    import hashlib

    data = _csv(50, 9)
    plan = plan_ranges(_chunks(data, 100), Contract.model_validate(CONTRACT), part_bytes=200)
    assert plan.size == len(data) and plan.sha256 == hashlib.sha256(data).hexdigest()


def test_max_parts_caps_the_number_of_ranges() -> None:
    plan = plan_ranges(_chunks(_csv(400, 5), 1000), Contract.model_validate(CONTRACT), part_bytes=100, max_parts=3)
    assert len(plan.parts) == 3


@pytest.mark.parametrize(("data", "reason"), [
    (gzip.compress(_csv(300, 1)), "compressed"),
    (b"id,note\n" + b'1,"never closed\n' + b"2,x\n" * 300, "unbalanced"),
    ("\ufeffid,note\n".encode("utf-16") + b"x" * 2000, "UTF-16"),
])
def test_unsafe_files_fall_back_to_one_part(data: bytes, reason: str) -> None:
    plan = plan_ranges(_chunks(data, 256), Contract.model_validate(CONTRACT), part_bytes=100)
    assert len(plan.parts) == 1 and reason in plan.reason
    assert plan.parts[0].end == len(data)


@pytest.mark.parametrize(("change", "reason"), [
    ({"schema": {"columns": [{"name": "id", "type": "int", "unique": True}]}}, "unique column(s) id"),
    ({"format": {"type": "csv", "encoding": "utf-8"}}, "delimiter is sniffed"),
    ({"format": {"type": "csv", "encoding": "utf-16", "delimiter": ","}}, "encoding utf-16"),
    ({"format": {"type": "json", "encoding": "utf-8"}}, "format json"),
    ({"schema": {"columns": []}}, "schema is inferred"),
])
def test_contracts_with_whole_file_rules_are_not_split(change: dict, reason: str) -> None:
    contract = Contract.model_validate({**CONTRACT, **change})
    assert reason in (contract_blocks_split(contract) or "")
    plan = plan_ranges(_chunks(_csv(300, 2), 512), contract, part_bytes=100)
    assert len(plan.parts) == 1 and reason in plan.reason


def test_row_local_contract_may_split() -> None:
    assert contract_blocks_split(Contract.model_validate(CONTRACT)) is None
