"""Response models of the Filegate REST API: they are what its OpenAPI page documents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class FileItem(BaseModel):
    id: int
    feed: str
    source: str
    name: str
    raw_key: str
    size_bytes: int | None
    status: str
    error: str | None = Field(description="why the file is failed, quarantined or duplicate")
    attempts: int
    arrived_on: date | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_dag_id: str | None
    last_run_id: str | None
    last_task_id: str | None
    duplicate_of: int | None


class FilePage(BaseModel):
    items: list[FileItem]
    total: int = Field(description="files matching the filters, over all pages (at most 10,000: see total_capped)")
    total_capped: bool = Field(description="true when more than `total` files match")
    limit: int
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page; null on the last")


class Step(BaseModel):
    dag_id: str
    run_id: str
    task_id: str
    try_number: int | None
    statuses: list[str] = Field(description="the statuses this task instance moved the file to")
    log_url: str = Field(description="the task instance's log in the Airflow UI")
    run_url: str


class FileDetail(BaseModel):
    file: dict[str, Any] = Field(description="every column of the file row, outputs (S3 keys) and params included")
    history: list[dict[str, Any]]
    api_calls: list[dict[str, Any]]
    quality: dict[str, Any] | None
    steps: list[Step]
    outputs: list[dict[str, str]] = Field(description="each output with its S3 URI")
    downloads: dict[str, str] = Field(default_factory=dict,
                                      description="kind (raw, rejected, reason, summary) → URL of the download "
                                                  "in this API, for the kinds this file has")
    can_reprocess: bool = Field(default=False, description="the file is failed or quarantined, has a raw copy, "
                                                           "and you may trigger `reprocess_files`")
    schema_drift: dict[str, Any] | None = Field(
        default=None, description="how the file's columns differ from its feed's schema version at the time: "
                                  "policy, action (evolved, warned, frozen, not_accepted), from_version, to_version, "
                                  "summary, changes (kind, column, message, …) and the file's columns")


class SchemaVersion(BaseModel):
    version: int
    fingerprint: str
    columns: list[dict[str, Any]] = Field(description="in order: name, type, nullable, declared")
    file_id: int | None = Field(description="the file that introduced this version")
    file_name: str | None = None
    last_file_id: int | None = Field(description="the latest accepted file with this schema")
    created_at: datetime
    last_seen_at: datetime


class SchemaHistoryOut(BaseModel):
    feed: str
    policy: str = Field(description="the contract's schema_drift: evolve, warn or freeze")
    current: int | None = Field(description="the version of the feed's latest accepted file")
    versions: list[SchemaVersion]


class CountRow(BaseModel):
    feed: str
    status: str
    files: int


class Counts(BaseModel):
    since: date
    until: date
    rows: list[CountRow]
    by_status: dict[str, int]
    by_feed: dict[str, int]
    total: int


class FeedInfo(BaseModel):
    name: str
    description: str
    source: str
    pattern: str
    dag_id: str
    raw_prefix: str
    can_upload: bool = Field(description="whether the current user may trigger the feed's DAG, so upload to it")


class FeedSummary(BaseModel):
    feed: str
    since: date
    until: date
    stats: dict[str, Any] | None = Field(description="files by status, rows, API success and latency, processing "
                                                     "latency; null when no file arrived in the period")
    top_issues: list[dict[str, Any]]


class AggregatesOut(BaseModel):
    feed: str
    available: bool
    source: str | None = Field(description="`postgres` (a feeds.* table) or `s3` (Parquet under processed/)")
    location: str | None
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int | None = Field(description="rows matching the filters (with `truncated`: among the rows read)")
    reason: str | None = Field(description="why nothing, or only part, is available")
    truncated: bool = Field(default=False, description="the Parquet fallback's per-request byte or object limit "
                                                       "left older output unread: rows and total are partial")


class ReportInfo(BaseModel):
    day: date
    files: dict[str, str] = Field(description="name → URL of the rendering in this API")


class Me(BaseModel):
    name: str
    role: str | None
    can_reprocess: bool = Field(default=False, description="whether you may trigger `reprocess_files`")


class Series(BaseModel):
    since: date
    until: date
    days: list[date] = Field(description="every UTC day of the period, oldest first")
    files: list[dict[str, Any]] = Field(description="{day, status, files}: files that arrived that day, by status")
    rows: list[dict[str, Any]] = Field(description="{day, feed, files, rows_total, rows_rejected}: rows of the "
                                                   "files with a quality result")
    latency: list[dict[str, Any]] = Field(description="{day, files, p50_s, p95_s, max_s}: arrival → final status, "
                                                      "over the files finished")


class ReprocessIn(BaseModel):
    file_ids: list[int] = Field(min_length=1, max_length=500, description="ids of failed or quarantined files")


class ReprocessOut(BaseModel):
    dag_id: str
    run_id: str
    run_url: str = Field(description="the run in the Airflow UI")
    file_ids: list[int]
    requested_by: str
    paused: bool = Field(description="the DAG is paused: the run waits until someone unpauses it")


class DeliveryFile(BaseModel):
    file_id: int
    name: str
    status: str
    arrived_at: datetime = Field(description="when the file was registered: the time that counts for its slot")


class DeliverySlot(BaseModel):
    feed: str
    local_day: date = Field(description="the slot's day in the feed's time zone: the calendar column")
    local_time: str = Field(description="the slot time in the feed's time zone, e.g. `06:00 GMT`")
    expected_at: datetime
    deadline_at: datetime = Field(description="expected_at plus the grace period: on time until then")
    state: str = Field(description="expected, arrived, late or missed")
    files_expected: int
    pattern: str = Field(description="the file-name glob of this slot")
    files: list[DeliveryFile] = Field(description="the files that count for this slot, by arrival")
    satisfied_at: datetime | None = Field(description="when the last needed file arrived")
    delay_seconds: int | None = Field(description="satisfied_at minus expected_at, when positive")
    missed_at: datetime | None = Field(description="when the slot was seen missed (kept when it turns late)")


class DeliveryFeed(BaseModel):
    feed: str
    timezone: str
    schedule: str = Field(description="the `expect:` calendar in words, e.g. `cron 0 6 * * 1-5`")
    files: int
    grace_minutes: int


class Deliveries(BaseModel):
    since: date
    until: date
    days: list[date] = Field(description="every local day from since to until, the calendar's columns")
    feeds: list[DeliveryFeed] = Field(description="readable feeds with an `expect:` block: the calendar's rows")
    slots: list[DeliverySlot]
