"""Splitting one large delimited file into byte ranges that several engine runs process independently, and
merging their results into exactly what one run over the whole file would have produced.

Used by the Lambda handlers (plan → parts → merge) when one invocation could not finish within 15 minutes.
Pure: local files and dictionaries in, local files and dictionaries out; S3 lives in the handlers.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from filegate.contracts.model import Contract
from filegate.pipeline.engine import EngineResult
from filegate.profiling.merge import merge_states, table_state
from filegate.profiling.profile import TableProfile
from filegate.validation.validator import REASONS_COLUMN, ROW_COLUMN

log = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
# Encodings in which byte 0x0A is always a newline and the quote byte always a quote: safe to cut at b"\n".
ASCII_COMPATIBLE = {"utf-8", "utf8", "ascii", "us-ascii", "latin-1", "latin1", "iso-8859-1", "iso-8859-15",
                    "cp1252", "windows-1252"}
FIELD_COUNT_RULE = "field_count"


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int
    end: int  # exclusive

    def as_dict(self) -> dict[str, int]:
        return {"index": self.index, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class PartPlan:
    size: int
    sha256: str
    header_end: int
    parts: list[ByteRange]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "header_end": self.header_end,
                "parts": [p.as_dict() for p in self.parts], "reason": self.reason}


def contract_blocks_split(contract: Contract) -> str | None:
    """Why this contract's files must run in one piece, or None when every rule is row-local.

    Splitting is only exact when each row is judged on its own: uniqueness, sort order, duplicate shares,
    row-count limits and aggregates look across the whole file; sniffed delimiters and guessed encodings could
    be guessed differently for each part."""
    fmt = contract.format
    if fmt.type not in ("csv", "tsv"):
        return f"format {fmt.type} is not split (only csv/tsv are)"
    if not fmt.header:
        return "files without a header row are not split"
    if fmt.type == "csv" and not fmt.delimiter:
        return "the delimiter is sniffed per file; set format.delimiter to allow splitting"
    if fmt.encoding.lower() not in ASCII_COMPATIBLE:
        return f"encoding {fmt.encoding} is not split (set an explicit ASCII-compatible encoding, e.g. utf-8)"
    if getattr(fmt, "compression", "none") not in ("none", "auto"):
        return f"compressed ({fmt.compression}) files are not split"
    if getattr(fmt, "skip_lines", 0):
        return "format.skip_lines is set"
    if not contract.columns:
        return "the schema is inferred from the whole file (no declared columns)"
    unique = [c.name for c in contract.columns if c.unique]
    if unique:
        return f"unique column(s) {', '.join(unique)} are checked across the whole file"
    rules = getattr(contract, "file_rules", None)
    if rules is not None and (rules.sorted_by or rules.max_duplicate_share is not None
                              or rules.min_rows is not None or rules.max_rows is not None):
        return "file_rules look across the whole file"
    if getattr(contract, "aggregate", None) is not None:
        return "an aggregate transform needs every row at once"
    return None


class BoundaryPlanner:
    """Consumes the file's bytes once, in order: sha256, and the first record boundary (a newline outside
    quotes) at or after every multiple of `part_bytes`. RFC 4180 escaped quotes ("") toggle the state twice,
    so quote parity tells whether a newline is inside a quoted field."""

    def __init__(self, part_bytes: int, quote_char: str, *, max_parts: int) -> None:
        self.part_bytes = part_bytes
        self.quote = quote_char.encode("ascii")
        self.max_parts = max_parts
        self.digest = hashlib.sha256()
        self.offset = 0
        self.in_quotes = False
        self.header_end: int | None = None
        self.boundaries: list[int] = []
        self.head = b""

    def _next_target(self) -> int:
        if self.header_end is None:
            return 0
        last = self.boundaries[-1] if self.boundaries else self.header_end
        return max(self.header_end + (len(self.boundaries) + 1) * self.part_bytes, last + 1)

    def _searching(self) -> bool:
        return self.header_end is None or len(self.boundaries) + 1 < self.max_parts

    def feed(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        if len(self.head) < 8:
            self.head += chunk[: 8 - len(self.head)]
        i = 0
        while i < len(chunk):
            if not self._searching():
                self.in_quotes ^= chunk.count(self.quote, i) % 2 == 1
                break
            target = self._next_target() - self.offset
            if target > i:  # nothing to find before the target: just keep the quote parity
                stop = min(target, len(chunk))
                self.in_quotes ^= chunk.count(self.quote, i, stop) % 2 == 1
                i = stop
                continue
            newline = chunk.find(b"\n", i)
            quote = chunk.find(self.quote, i)
            if quote != -1 and (newline == -1 or quote < newline):
                self.in_quotes = not self.in_quotes
                i = quote + 1
            elif newline != -1:
                if not self.in_quotes:
                    self._boundary(self.offset + newline + 1)
                i = newline + 1
            else:
                break
        self.offset += len(chunk)

    def _boundary(self, position: int) -> None:
        if self.header_end is None:
            self.header_end = position
        else:
            self.boundaries.append(position)

    def plan(self, blocked_by: str | None) -> PartPlan:
        size, sha = self.offset, self.digest.hexdigest()
        header_end = self.header_end if self.header_end is not None else size
        reason = blocked_by
        if reason is None and self.head.startswith((GZIP_MAGIC, ZIP_MAGIC)):
            reason = "compressed files cannot be cut into byte ranges"
        if reason is None and self.head.startswith(UTF16_BOMS):
            reason = "UTF-16/32 text cannot be cut at newline bytes"
        if reason is None and self.in_quotes:
            reason = "the quote characters are unbalanced (odd count): record boundaries are not certain"
        cuts = [b for b in self.boundaries if header_end < b < size] if reason is None else []
        starts = [header_end, *cuts]
        ends = [*cuts, size]
        parts = [ByteRange(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True)) if e > s]
        if not parts:
            parts = [ByteRange(0, header_end, max(size, header_end))]
        if reason is None:
            reason = f"{len(parts)} part(s) of about {self.part_bytes} bytes"
        return PartPlan(size=size, sha256=sha, header_end=header_end, parts=parts, reason=reason)


def plan_ranges(chunks: Iterable[bytes], contract: Contract, *, part_bytes: int, max_parts: int = 200) -> PartPlan:
    planner = BoundaryPlanner(part_bytes, contract.format.quote_char, max_parts=max_parts)
    for chunk in chunks:
        planner.feed(chunk)
    return planner.plan(contract_blocks_split(contract))


# ---- part results ------------------------------------------------------------------------------------------

def profile_parquet(files: Iterable[Path]) -> dict[str, Any]:
    """The mergeable profile state of a part, rebuilt from the valid rows the engine wrote (the engine's
    report is final statistics, which do not merge)."""
    profile = TableProfile()
    try:
        for path in files:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
                profile.update(pa.Table.from_batches([batch]))
        return table_state(profile)
    finally:
        close = getattr(profile, "close", None)
        if close is not None:
            close()


def part_result(index: int, result: EngineResult, *, lines: int) -> dict[str, Any]:
    """`lines`: newline bytes in the part's range; the parser numbers unsplittable rows by physical line."""
    bad_rows = next((i["count"] for i in result.issues if i.get("rule") == FIELD_COUNT_RULE), 0)
    return {
        "index": index, "status": result.status, "reason": result.reason, "lines": lines,
        "rows_total": result.rows_total, "rows_valid": result.rows_valid, "rows_rejected": result.rows_rejected,
        "bad_rows": bad_rows, "issues": result.issues, "schema": result.schema,
        "partition_column": result.partition_column, "seconds": round(result.seconds, 3),
        "rows_output": getattr(result, "rows_output", 0), "duplicate_rows": getattr(result, "duplicate_rows", 0),
        "source": getattr(result, "source", {}), "file_schema": getattr(result, "file_schema", []),
    }


def part_profile_state(result: EngineResult) -> dict[str, Any]:
    """The engine's own profile of the part (validated rows, before transforms), as JSON-safe state."""
    profile = getattr(result, "profile", None)
    if profile is None:  # an engine without a mergeable profile: rebuild it from the rows written
        return profile_parquet(result.parquet_files.values())
    return table_state(profile)


# ---- merge -------------------------------------------------------------------------------------------------

@dataclass
class MergeInput:
    """One part as the merge sees it: its result.json, local copies of its outputs, its profile state."""

    result: dict[str, Any]
    parquet: dict[str, Path] = field(default_factory=dict)
    rejected: Path | None = None
    profile: dict[str, Any] | None = None


# How run_engine orders and counts its issues: parser rows first, then rule breaks by count (their percent
# over the parsed rows), then duplicate rows and missing values (their percent over every row).
_ISSUE_GROUP = {FIELD_COUNT_RULE: 0, "duplicate_row": 2, "missing": 3}
_OVER_ALL_ROWS = {FIELD_COUNT_RULE, "duplicate_row", "missing"}


def merge_issues(parts: list[MergeInput], rows_total: int) -> list[dict[str, Any]]:
    """Adds issue counts; sample rows are renumbered from part-local to file row (or line) numbers.
    duplicate_row counts only repeats within a part: a lower bound when a file is split."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    offset = line_offset = 0
    for part in parts:
        res = part.result
        for issue in res["issues"]:
            key = (issue["column"], issue["rule"])
            entry = merged.setdefault(key, {**issue, "count": 0, "sample_rows": []})
            entry["count"] += issue["count"]
            shift = line_offset if issue["rule"] == FIELD_COUNT_RULE else offset
            samples = [r + shift if isinstance(r, int) else r for r in issue.get("sample_rows") or []]
            entry["sample_rows"] = (entry["sample_rows"] + samples)[:5]
        offset += res["rows_total"] - res["bad_rows"]
        line_offset += res["lines"]
    bad_total = sum(p.result["bad_rows"] for p in parts)
    ordered = sorted(merged.values(), key=lambda i: (_ISSUE_GROUP.get(i["rule"], 1),
                                                     -i["count"] if _ISSUE_GROUP.get(i["rule"], 1) == 1 else 0))
    for issue in ordered:
        total = rows_total if issue["rule"] in _OVER_ALL_ROWS else rows_total - bad_total
        issue["percent"] = round(100.0 * issue["count"] / max(total, 1), 3)
    return ordered


def merge_rejects(parts: list[MergeInput], target: Path) -> int:
    """Validation rejects of every part first (renumbered), then rows the parser could not split, as one run
    over the whole file writes them."""
    rows = 0
    header: list[str] | None = None
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        for pass_bad in (False, True):
            offset = line_offset = 0
            for part in parts:
                res = part.result
                if part.rejected is not None:
                    with part.rejected.open(newline="", encoding="utf-8") as fh:
                        reader = csv.reader(fh)
                        part_header = next(reader)
                        if header is None:
                            header = part_header
                            writer.writerow(header)
                        # The engine writes a part's validation rejects first and its unsplittable rows last.
                        split_at = res["rows_rejected"] - res["bad_rows"]
                        for n, record in enumerate(reader):
                            if (n >= split_at) != pass_bad:
                                continue
                            if record and record[0].isdigit():
                                record[0] = str(int(record[0]) + (line_offset if pass_bad else offset))
                            if pass_bad and record:
                                record[-1] = _renumber_line(record[-1], line_offset)
                            writer.writerow(record)
                            rows += 1
                offset += res["rows_total"] - res["bad_rows"]
                line_offset += res["lines"]
    if header is None:
        target.unlink()
    return rows


def merge_parquet(parts: list[MergeInput], folder: Path, compression: str) -> dict[str, Path]:
    """One Parquet file per partition value: the parts' files concatenated in part order (row order kept)."""
    values: list[str] = []
    for part in parts:
        values += [v for v in part.parquet if v not in values]
    merged: dict[str, Path] = {}
    codec = None if compression == "none" else compression
    for n, value in enumerate(values):
        path = folder / f"merged-{n:04d}.parquet"
        writer: pq.ParquetWriter | None = None
        schema: pa.Schema | None = None
        try:
            for part in parts:
                source = part.parquet.get(value)
                if source is None:
                    continue
                for batch in pq.ParquetFile(source).iter_batches(batch_size=65536):
                    table = pa.Table.from_batches([batch])
                    if writer is None:
                        schema = table.schema
                        writer = pq.ParquetWriter(path, schema, compression=codec)
                    elif table.schema != schema:
                        table = table.cast(schema)
                    writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is not None:
            merged[value] = path
    return merged


class _NoSortCheck:
    sort = None  # sorted_by blocks splitting, so no part carries a sort check


def quarantine_reason(contract: Contract, result: EngineResult) -> str | None:
    """The engine's own whole-file verdict, applied to the merged counts."""
    from filegate.pipeline import engine

    return engine._file_rule_failure(contract, _NoSortCheck(), result)  # type: ignore[arg-type]


def merge_parts(contract: Contract, parts: list[MergeInput], work_dir: Path) -> EngineResult:
    """The EngineResult one run over the whole file would have given, built from its parts."""
    parts = sorted(parts, key=lambda p: p.result["index"])
    seconds = sum(p.result.get("seconds", 0.0) for p in parts)
    failed = next((p for p in parts if p.result["status"] != "processed" and p.result.get("reason")
                   and not _verdict_only(p.result["reason"])), None)
    if failed is not None:
        reason = f"{failed.result['reason']} (in part {failed.result['index'] + 1} of {len(parts)})"
        return EngineResult("quarantined", reason, seconds=seconds)
    rows_total = sum(p.result["rows_total"] for p in parts)
    issues = merge_issues(parts, rows_total)
    profile = merge_states([p.profile for p in parts if p.profile is not None])
    rejected_path = work_dir / "rejected.csv"
    rows_rejected = merge_rejects(parts, rejected_path)
    schema = next((p.result["schema"] for p in parts if p.result["schema"]), {})
    result = EngineResult(
        status="processed", reason=None, rows_total=rows_total, rows_valid=rows_total - rows_rejected,
        rows_rejected=rows_rejected,
        parquet_files=merge_parquet(parts, work_dir, contract.destinations.parquet.compression),
        partition_column=parts[0].result["partition_column"],
        rejected_file=rejected_path if rows_rejected else None, issues=issues,
        column_stats=profile.as_dict(), schema=schema, seconds=seconds,
    )
    # Fields newer engines carry; set only where the EngineResult has them.
    extra = {"rows_output": sum(p.result.get("rows_output", 0) for p in parts),
             "duplicate_rows": sum(p.result.get("duplicate_rows", 0) for p in parts),
             "source": parts[0].result.get("source") or {},
             # Every part reads the same header with the same contract: the first part's columns are the file's.
             "file_schema": parts[0].result.get("file_schema") or []}
    for name, value in extra.items():
        if hasattr(result, name):
            setattr(result, name, value)
    reason = quarantine_reason(contract, result)
    if reason is not None:
        result.status, result.reason = "quarantined", reason
    return result


_LINE = re.compile(r"^line (\d+):")


def _renumber_line(reason: str, offset: int) -> str:
    return _LINE.sub(lambda m: f"line {int(m[1]) + offset}:", reason, count=1)


_VERDICTS = (re.compile(r"^the file has a header but no data rows$"), re.compile(r"^\d+ of \d+ rows .* rejected"))


def _verdict_only(reason: str) -> bool:
    """A part quarantined only by the share/emptiness verdict is not a file-level failure: the merge re-decides."""
    return any(p.search(reason) for p in _VERDICTS)


__all__ = ["REASONS_COLUMN", "ROW_COLUMN", "ByteRange", "MergeInput", "PartPlan", "contract_blocks_split",
           "merge_parts", "part_result", "plan_ranges", "profile_parquet"]
