"""The Filegate REST API: files, their history, API calls and quality; counts, feed summaries and aggregates;
failures; daily reports; and the upload endpoint. Every route needs an authenticated Airflow user, and what it
returns follows the Airflow permissions of each feed's DAG (auth.py states the rule; routes only ask `Access`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from filegate.orchestration.webapp import links
from filegate.orchestration.webapp.auth import Access, CurrentUser, feed_dag_id, may_trigger, require_trigger, user_name
from filegate.orchestration.webapp.backend import Backend, get_backend
from filegate.orchestration.webapp.models import (
    AggregatesOut,
    CountRow,
    Counts,
    FeedInfo,
    FeedSummary,
    FileDetail,
    FilePage,
    Me,
    ReportInfo,
    Step,
)
from filegate.orchestration.webapp.multipart import UploadResult, stream_upload
from filegate.reporting.aggregates import OutputTooLarge, feed_aggregates
from filegate.reporting.archive import REPORT_FILES, list_report_days, report_key
from filegate.status.queries import FileFilter, Page, Period

FEED_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_PERIOD_DAYS = 400
EPOCH = date(2000, 1, 1)
BackendDep = Annotated[Backend, Depends(get_backend)]
FeedPath = Annotated[str, Path(pattern=FEED_PATTERN, description="a feed name, e.g. `orders`")]
FeedQuery = Annotated[str | None, Query(pattern=FEED_PATTERN, description="only this feed; 403 unless you may read "
                                                                          "its DAG `process_<feed>`")]
READ_RULE = "Only rows of feeds whose DAG `process_<feed>` you may read."
FEED_RULE = "Needs read permission on the DAG `process_<feed>` (403 otherwise)."
router = APIRouter(prefix="/api")


def _period(since: date | None, until: date | None, default_days: int = 7) -> tuple[date, date, Period]:
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=default_days - 1)
    if since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"since ({since}) is after until ({until})")
    if (until - since).days > MAX_PERIOD_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a period is at most {MAX_PERIOD_DAYS} days")
    return since, until, Period.days(since, until)


def _known_feed(backend: Backend, feed: str, access: Access) -> Any:
    contract = backend.contract(feed)
    if contract is None:
        known = ", ".join(sorted(backend.feed_names() & access.feeds)) or "none"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown feed {feed!r}; feeds you may read: {known}")
    return contract


def _no_file(file_id: int) -> HTTPException:
    # A file of a feed the user may not read gets the answer of a missing one: ids are sequential, and a 403
    # would confirm the file exists (and, naming the DAG to ask for, reveal its feed).
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no file with id {file_id} in the feeds you may read")


def _file_or_404(backend: Backend, file_id: int, access: Access) -> None:
    if not backend.queries.exists(file_id, feeds=access.feeds):
        raise _no_file(file_id)


@router.get("/me", response_model=Me, summary="The signed-in Airflow user")
def me(user: CurrentUser) -> Me:
    return Me(name=user_name(user), role=getattr(user, "role", None))


@router.get("/feeds", response_model=list[FeedInfo],
            summary="Feeds (one per contract) you may read, and whether you may upload to each",
            description="Only feeds whose DAG `process_<feed>` you may read; an empty list when there is none.")
def feeds(user: CurrentUser, backend: BackendDep, access: Access) -> list[FeedInfo]:
    return [FeedInfo(name=c.name, description=c.description, source=c.source.kind, pattern=c.source.pattern,
                     dag_id=feed_dag_id(c.name), raw_prefix=c.raw_prefix,
                     can_upload=may_trigger(user, feed_dag_id(c.name)))
            for c in backend.contracts() if c.name in access.feeds]


@router.get("/files", response_model=FilePage, summary="Files, newest first, filtered and paginated by cursor",
            description=READ_RULE)
def list_files(
    user: CurrentUser,
    backend: BackendDep,
    access: Access,
    feed: FeedQuery = None,
    status_: Annotated[list[str] | None, Query(alias="status", description="repeat for several")] = None,
    since: Annotated[date | None, Query(description="files created on or after this UTC day")] = None,
    until: Annotated[date | None, Query(description="files created on or before this UTC day")] = None,
    q: Annotated[str | None, Query(max_length=200, description="case-insensitive part of the file name")] = None,
    raw_key: Annotated[str | None, Query(max_length=1024)] = None,
    cursor: Annotated[int | None, Query(ge=1, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    try:
        period = Period.days(since or EPOCH, until or datetime.now(UTC).date()) if (since or until) else None
        flt = FileFilter(feed=feed, statuses=tuple(status_ or ()), period=period, name=q or None, raw_key=raw_key,
                         feeds=access.scope(feed))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    page = backend.queries.list_files(flt, limit=limit, cursor=cursor)
    return _page(page)


def _page(page: Page) -> dict[str, Any]:
    return {"items": page.items, "total": page.total, "total_capped": page.total_capped, "limit": page.limit,
            "next_cursor": page.next_cursor}


def _outputs(bucket: str, outputs: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for name, value in outputs.items():
        for key in value if isinstance(value, list) else [value]:
            if isinstance(key, str):
                found.append({"name": name, "key": key, "uri": f"s3://{bucket}/{key}"})
    return found


FILE_RULE = "404 when the file does not exist or its feed's DAG `process_<feed>` is not readable to you."


@router.get("/files/{file_id}", response_model=FileDetail,
            summary="One file: row, history, API calls, quality, outputs, links to each step's task log",
            description=FILE_RULE)
def file_detail(file_id: int, user: CurrentUser, backend: BackendDep, access: Access) -> dict[str, Any]:
    detail = backend.queries.file_detail(file_id, feeds=access.feeds)
    if detail is None:
        raise _no_file(file_id)
    steps = [Step(**s, log_url=links.task_log_url(s["dag_id"], s["run_id"], s["task_id"], s["try_number"]),
                  run_url=links.dag_run_url(s["dag_id"], s["run_id"])) for s in detail.steps]
    return {"file": detail.file, "history": detail.history, "api_calls": detail.api_calls,
            "quality": detail.quality, "steps": steps, "outputs": _outputs(backend.bucket, detail.file["outputs"])}


@router.get("/files/{file_id}/history", summary="Every status transition of a file, oldest first",
            description=FILE_RULE)
def file_history(file_id: int, user: CurrentUser, backend: BackendDep, access: Access) -> list[dict[str, Any]]:
    _file_or_404(backend, file_id, access)
    return backend.queries.history(file_id)


@router.get("/files/{file_id}/api-calls", summary="Every API call made for a file, retries included",
            description=FILE_RULE)
def file_api_calls(file_id: int, user: CurrentUser, backend: BackendDep, access: Access) -> list[dict[str, Any]]:
    _file_or_404(backend, file_id, access)
    return backend.queries.api_calls(file_id)


@router.get("/files/{file_id}/quality", summary="A file's quality result: rows, schema, column statistics, issues",
            description=FILE_RULE)
def file_quality(file_id: int, user: CurrentUser, backend: BackendDep, access: Access) -> dict[str, Any]:
    _file_or_404(backend, file_id, access)
    quality = backend.queries.quality(file_id)
    if quality is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"file {file_id} has no quality result (not parsed yet?)")
    return quality


@router.get("/counts", response_model=Counts, summary="Files by feed and status over a period (default 7 days)",
            description=READ_RULE)
def counts(user: CurrentUser, backend: BackendDep, access: Access,
           since: date | None = None, until: date | None = None, feed: FeedQuery = None) -> Counts:
    first, last, period = _period(since, until)
    rows = [CountRow(**r) for r in backend.queries.counts(period, feed=feed, feeds=access.scope(feed))]
    by_status: dict[str, int] = {}
    by_feed: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + row.files
        by_feed[row.feed] = by_feed.get(row.feed, 0) + row.files
    return Counts(since=first, until=last, rows=rows, by_status=by_status, by_feed=by_feed,
                  total=sum(by_feed.values()))


@router.get("/errors", response_model=FilePage, summary="Failed and quarantined files with their reasons",
            description=READ_RULE)
def errors(user: CurrentUser, backend: BackendDep, access: Access,
           feed: FeedQuery = None,
           since: date | None = None, until: date | None = None,
           cursor: Annotated[int | None, Query(ge=1)] = None,
           limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    period = _period(since, until)[2] if (since or until) else None
    page = backend.queries.failures(period, feed=feed, limit=limit, cursor=cursor, feeds=access.scope(feed))
    return _page(page)


@router.get("/feeds/{feed}/summary", response_model=FeedSummary,
            summary="A feed's numbers over a period: statuses, rows, API success/latency, processing latency",
            description=FEED_RULE)
def feed_summary(feed: FeedPath, user: CurrentUser, backend: BackendDep, access: Access,
                 since: date | None = None, until: date | None = None) -> FeedSummary:
    access.require(feed)
    _known_feed(backend, feed, access)
    first, last, period = _period(since, until)
    stats = backend.queries.feed_stats(period, feed=feed)
    return FeedSummary(feed=feed, since=first, until=last, stats=stats[0] if stats else None,
                       top_issues=backend.queries.top_issues(period, feed=feed))


@router.get("/feeds/{feed}/aggregates", response_model=AggregatesOut,
            summary="A feed's published rows, e.g. marketplace totals per seller, product and day",
            description=FEED_RULE)
def aggregates(feed: FeedPath, user: CurrentUser, backend: BackendDep, access: Access,
               where: Annotated[list[str] | None, Query(description="`column:value`, repeat to AND them; e.g. "
                                                                     "`seller_id:S1`")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> AggregatesOut:
    access.require(feed)
    _known_feed(backend, feed, access)
    filters = {}
    for item in where or []:
        column, sep, value = item.partition(":")
        if not sep or not column:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"where {item!r}: expected column:value")
        filters[column] = value
    try:
        found = feed_aggregates(backend.dsn, backend.s3, backend.bucket, feed, filters=filters, limit=limit,
                                offset=offset)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except OutputTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    return AggregatesOut(feed=feed, available=found.available, source=found.source, location=found.location,
                         columns=found.columns, rows=found.rows, total=found.total, reason=found.reason,
                         truncated=found.truncated)


REPORT_RULE = ("A daily report covers every feed, so every report route needs read permission on the DAG "
               "`daily_report` and on every feed's DAG `process_<feed>` (403 otherwise).")


@router.get("/reports", response_model=list[ReportInfo], summary="Daily reports in S3, newest first",
            description=REPORT_RULE)
def reports(user: CurrentUser, backend: BackendDep, access: Access,
            limit: Annotated[int, Query(ge=1, le=1000)] = 60) -> list[ReportInfo]:
    access.require_reports()
    return [ReportInfo(day=day, files={name: f"api/reports/{day}/{name}" for name in REPORT_FILES})
            for day in list_report_days(backend.s3, backend.bucket)[:limit]]


@router.get("/reports/{day}", summary="One day's report as JSON", description=REPORT_RULE)
def report(day: date, user: CurrentUser, backend: BackendDep, access: Access) -> Any:
    access.require_reports()
    return json.loads(_report_object(backend, day, "report.json")["Body"].read())


def _report_object(backend: Backend, day: date, name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return dict(backend.s3.get_object(Bucket=backend.bucket, Key=report_key(day, name)))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no report for {day} yet: trigger or backfill the daily_report DAG") from exc
        raise


@router.get("/reports/{day}/{name}", summary="One rendering of a day's report (report.html, .json, .csv, "
                                             "failures.csv), streamed from S3", description=REPORT_RULE)
def report_file(day: date, name: Annotated[str, Path(pattern=r"^(report\.(html|json|csv)|failures\.csv)$")],
                user: CurrentUser, backend: BackendDep, access: Access) -> StreamingResponse:
    access.require_reports()
    obj = _report_object(backend, day, name)
    headers = {"X-Content-Type-Options": "nosniff"}
    if name.endswith(".html"):
        # The report is escaped already; the policy keeps any slip from running script.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    else:
        headers["Content-Disposition"] = f'attachment; filename="filegate-{day}-{name}"'
    return StreamingResponse(obj["Body"].iter_chunks(1 << 16), media_type=REPORT_FILES[name], headers=headers)


@router.post("/feeds/{feed}/files", response_model=UploadResult, status_code=status.HTTP_201_CREATED,
             summary="Upload a file to a feed; its processing starts from the S3 event",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {
                     "metadata": {"type": "string", "description": "JSON {\"params\": {...}, \"note\": \"...\"}; "
                                                                   "must come before `file`"},
                     "file": {"type": "string", "format": "binary"}}}}}}})
async def upload(feed: FeedPath, request: Request, user: CurrentUser, backend: BackendDep,
                 access: Access) -> UploadResult:
    """Streams the file to `raw/<feed>/<today>/<safe name>` (a name already taken today gets a suffix; raw/
    is never overwritten). Needs permission to trigger `process_<feed>`. Over the size limit: 413 and nothing
    is stored. The `metadata.params` go to the object's `x-amz-meta-filegate-params`."""
    require_trigger(user, feed_dag_id(feed))  # first: a refused user learns nothing about which feeds exist
    contract = _known_feed(backend, feed, access)
    result = await stream_upload(request.stream(), content_type=request.headers.get("content-type"),
                                 content_length=request.headers.get("content-length"), contract=contract,
                                 s3=backend.s3, bucket=backend.bucket, user=user_name(user),
                                 max_bytes=backend.limits.max_bytes, part_bytes=backend.limits.part_bytes)
    result.status_url = f"api/files?raw_key={result.raw_key}"
    return result
