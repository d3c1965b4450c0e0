"""Running the file engine on a small CSV text in a test's temporary folder, and reading back what it wrote."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from filegate.contracts.model import Contract
from filegate.pipeline.engine import EngineResult, run_engine


def run(c: Contract, tmp_path: Path, text: str) -> EngineResult:
    path = tmp_path / "f.csv"
    path.write_text(text)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_engine(c, path, arrived=date(2026, 11, 21), work_dir=work)


def rows_of(result: EngineResult) -> list[dict[str, object]]:
    return [r for p in result.parquet_files.values() for r in pq.read_table(p).to_pylist()]
