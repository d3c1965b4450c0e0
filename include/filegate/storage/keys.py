"""The bucket layout. raw/ is written once by ingestion and never modified by processing;
every derived key is deterministic so that a retry overwrites instead of duplicating."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from datetime import date

MAX_NAME_LENGTH = 200
UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]+")


def safe_name(name: str) -> str:
    """A file name that cannot escape its prefix or break a key: no separators, dots-only, controls or excess."""
    base = posixpath.basename(name.replace("\\", "/"))
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = UNSAFE.sub("_", base).strip("._") or "unnamed"
    if len(base) > MAX_NAME_LENGTH:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:16] if dot else ""
        base = (stem if dot else base)[: MAX_NAME_LENGTH - len(ext) - 1] + (f".{ext}" if ext else "")
    return base


def raw_prefix(feed: str) -> str:
    """Every arrival of a feed, by day: raw/<feed>/<yyyy>/<mm>/<dd>/<name>; never overwritten."""
    return f"raw/{feed}/"


def raw_key(feed: str, arrived: date, name: str) -> str:
    return f"{raw_prefix(feed)}{arrived:%Y/%m/%d}/{safe_name(name)}"


def arrival_date_from_raw_key(key: str) -> date | None:
    match = re.match(r"^raw/[^/]+/(\d{4})/(\d{2})/(\d{2})/", key)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def file_stem(name: str, sha256: str) -> str:
    """Names derived outputs after the file and its content, so two deliveries never collide."""
    stem = safe_name(name).rsplit(".", 1)[0]
    return f"{stem}-{sha256[:12]}"


def processed_prefix(feed: str) -> str:
    """A feed's published outputs: Parquet partitions, PDF parts and per-file summaries."""
    return f"processed/{feed}/"


def parquet_key(feed: str, partition_column: str, partition_value: str, stem: str) -> str:
    return f"{processed_prefix(feed)}{partition_column}={partition_value}/{stem}.parquet"


def pdf_part_key(feed: str, stem: str, part: str) -> str:
    return f"{processed_prefix(feed)}{stem}/{safe_name(part)}.pdf"


def summary_key(feed: str, stem: str) -> str:
    return f"{processed_prefix(feed)}_summaries/{stem}.json"


def quarantine_rows_key(feed: str, arrived: date, stem: str) -> str:
    return f"quarantine/{feed}/{arrived:%Y/%m/%d}/{stem}.rejected.csv"


def quarantine_reason_key(feed: str, arrived: date, stem: str) -> str:
    return f"quarantine/{feed}/{arrived:%Y/%m/%d}/{stem}.reason.json"


def staging_prefix(feed: str, sha256: str) -> str:
    """Work space of one file split across Lambda invocations; nothing here is published."""
    return f"staging/{feed}/{sha256[:16]}/"


def part_prefix(work_prefix: str, index: int) -> str:
    return f"{work_prefix}part-{index:05d}/"


def staged_publish_prefix(feed: str, sha256: str) -> str:
    """Where a Lambda function leaves a processed file's Parquet and summary for the worker's Postgres load;
    they reach processed/ only after its audit passed (filegate.pipeline.staged_publish)."""
    return f"{staging_prefix(feed, sha256)}publish/"


def staged_key(prefix: str, key: str) -> str:
    """The staged copy of an output under `prefix`: the output's own key below it, so its place is known."""
    return f"{prefix}{key}"


REPORTS_PREFIX = "reports/"
_REPORT_FOLDER = re.compile(r"^reports/(\d{4}-\d{2}-\d{2})/$")


def report_key(day: date, name: str) -> str:
    return f"{REPORTS_PREFIX}{day:%Y-%m-%d}/{name}"


def report_day(folder: str) -> date | None:
    """The day of a `reports/<yyyy-mm-dd>/` folder, or None for anything else."""
    match = _REPORT_FOLDER.match(folder)
    return date.fromisoformat(match[1]) if match else None
