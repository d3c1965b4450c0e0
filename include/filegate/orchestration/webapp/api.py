"""The Filegate REST API: files, their history, API calls and quality; counts, feed summaries and aggregates;
failures; daily reports; and the upload endpoint. Every route needs an authenticated Airflow user."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from filegate.orchestration.webapp import links
from filegate.orchestration.webapp.auth import CurrentUser, may_trigger, require_trigger, user_name
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
from filegate.orchestration.webapp.upload import UploadResult, stream_upload
from filegate.reporting.aggregates import OutputTooLarge, feed_aggregates
from filegate.reporting.store import REPORT_FILES, list_report_days, report_key
from filegate.status.queries import FileFilter, Page, Period

FEED_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_PERIOD_DAYS = 400
EPOCH = date(2000, 1, 1)
BackendDep = Annotated[Backend, Depends(get_backend)]
FeedPath = Annotated[str, Path(pattern=FEED_PATTERN, description="a feed name, e.g. `orders`")]
router = APIRouter(prefix="/api")


def _period(since: date | None, until: date | None, default_days: int = 7) -> tuple[date, date, Period]:
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=default_days - 1)
    if since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"since ({since}) is after until ({until})")
    if (until - since).days > MAX_PERIOD_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a period is at most {MAX_PERIOD_DAYS} days")
    return since, until, Period.days(since, until)


def _known_feed(backend: Backend, feed: str) -> Any:
    contract = backend.contract(feed)
    if contract is None:
        known = ", ".join(c.name for c in backend.contracts()) or "none"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown feed {feed!r}; feeds: {known}")
    return contract


def _file_or_404(backend: Backend, file_id: int) -> None:
    if not backend.queries.exists(file_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file with id {file_id}")


@router.get("/me", response_model=Me, summary="The signed-in Airflow user")
def me(user: CurrentUser) -> Me:
    return Me(name=user_name(user), role=getattr(user, "role", None))


@router.get("/feeds", response_model=list[FeedInfo], summary="Feeds (one per contract) and whether you may upload")
def feeds(user: CurrentUser, backend: BackendDep) -> list[FeedInfo]:
    return [FeedInfo(name=c.name, description=c.description, source=c.source.kind, pattern=c.source.pattern,
                     dag_id=f"process_{c.name}", raw_prefix=c.raw_prefix,
                     can_upload=may_trigger(user, f"process_{c.name}")) for c in backend.contracts()]


@router.get("/files", response_model=FilePage, summary="Files, newest first, filtered and paginated by cursor")
def list_files(
    user: CurrentUser,
    backend: BackendDep,
    feed: Annotated[str | None, Query(pattern=FEED_PATTERN)] = None,
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
        flt = FileFilter(feed=feed, statuses=tuple(status_ or ()), period=period, name=q or None, raw_key=raw_key)
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


@router.get("/files/{file_id}", response_model=FileDetail,
            summary="One file: row, history, API calls, quality, outputs, links to each step's task log")
def file_detail(file_id: int, user: CurrentUser, backend: BackendDep) -> dict[str, Any]:
    detail = backend.queries.file_detail(file_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file with id {file_id}")
    steps = [Step(**s, log_url=links.task_log_url(s["dag_id"], s["run_id"], s["task_id"], s["try_number"]),
                  run_url=links.dag_run_url(s["dag_id"], s["run_id"])) for s in detail.steps]
    return {"file": detail.file, "history": detail.history, "api_calls": detail.api_calls,
            "quality": detail.quality, "steps": steps, "outputs": _outputs(backend.bucket, detail.file["outputs"])}


@router.get("/files/{file_id}/history", summary="Every status transition of a file, oldest first")
def file_history(file_id: int, user: CurrentUser, backend: BackendDep) -> list[dict[str, Any]]:
    _file_or_404(backend, file_id)
    return backend.queries.history(file_id)


@router.get("/files/{file_id}/api-calls", summary="Every API call made for a file, retries included")
def file_api_calls(file_id: int, user: CurrentUser, backend: BackendDep) -> list[dict[str, Any]]:
    _file_or_404(backend, file_id)
    return backend.queries.api_calls(file_id)


@router.get("/files/{file_id}/quality", summary="A file's quality result: rows, schema, column statistics, issues")
def file_quality(file_id: int, user: CurrentUser, backend: BackendDep) -> dict[str, Any]:
    _file_or_404(backend, file_id)
    quality = backend.queries.quality(file_id)
    if quality is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"file {file_id} has no quality result (not parsed yet?)")
    return quality


@router.get("/counts", response_model=Counts, summary="Files by feed and status over a period (default 7 days)")
def counts(user: CurrentUser, backend: BackendDep,
           since: date | None = None, until: date | None = None,
           feed: Annotated[str | None, Query(pattern=FEED_PATTERN)] = None) -> Counts:
    first, last, period = _period(since, until)
    rows = [CountRow(**r) for r in backend.queries.counts(period, feed=feed)]
    by_status: dict[str, int] = {}
    by_feed: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + row.files
        by_feed[row.feed] = by_feed.get(row.feed, 0) + row.files
    return Counts(since=first, until=last, rows=rows, by_status=by_status, by_feed=by_feed,
                  total=sum(by_feed.values()))


@router.get("/errors", response_model=FilePage, summary="Failed and quarantined files with their reasons")
def errors(user: CurrentUser, backend: BackendDep,
           feed: Annotated[str | None, Query(pattern=FEED_PATTERN)] = None,
           since: date | None = None, until: date | None = None,
           cursor: Annotated[int | None, Query(ge=1)] = None,
           limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    period = _period(since, until)[2] if (since or until) else None
    page = backend.queries.failures(period, feed=feed, limit=limit, cursor=cursor)
    return _page(page)


@router.get("/feeds/{feed}/summary", response_model=FeedSummary,
            summary="A feed's numbers over a period: statuses, rows, API success/latency, processing latency")
def feed_summary(feed: FeedPath, user: CurrentUser, backend: BackendDep,
                 since: date | None = None, until: date | None = None) -> FeedSummary:
    _known_feed(backend, feed)
    first, last, period = _period(since, until)
    stats = backend.queries.feed_stats(period, feed=feed)
    return FeedSummary(feed=feed, since=first, until=last, stats=stats[0] if stats else None,
                       top_issues=backend.queries.top_issues(period, feed=feed))


@router.get("/feeds/{feed}/aggregates", response_model=AggregatesOut,
            summary="A feed's published rows, e.g. marketplace totals per seller, product and day")
def aggregates(feed: FeedPath, user: CurrentUser, backend: BackendDep,
               where: Annotated[list[str] | None, Query(description="`column:value`, repeat to AND them; e.g. "
                                                                     "`seller_id:S1`")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> AggregatesOut:
    _known_feed(backend, feed)
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


@router.get("/reports", response_model=list[ReportInfo], summary="Daily reports in S3, newest first")
def reports(user: CurrentUser, backend: BackendDep,
            limit: Annotated[int, Query(ge=1, le=1000)] = 60) -> list[ReportInfo]:
    return [ReportInfo(day=day, files={name: f"api/reports/{day}/{name}" for name in REPORT_FILES})
            for day in list_report_days(backend.s3, backend.bucket)[:limit]]


@router.get("/reports/{day}", summary="One day's report as JSON")
def report(day: date, user: CurrentUser, backend: BackendDep) -> Any:
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
                                             "failures.csv), streamed from S3")
def report_file(day: date, name: Annotated[str, Path(pattern=r"^(report\.(html|json|csv)|failures\.csv)$")],
                user: CurrentUser, backend: BackendDep) -> StreamingResponse:
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
async def upload(feed: FeedPath, request: Request, user: CurrentUser, backend: BackendDep) -> UploadResult:
    """Streams the file to `raw/<feed>/<today>/<safe name>` (a name already taken today gets a suffix; raw/
    is never overwritten). Needs permission to trigger `process_<feed>`. Over the size limit: 413 and nothing
    is stored. The `metadata.params` go to the object's `x-amz-meta-filegate-params`."""
    contract = _known_feed(backend, feed)
    require_trigger(user, f"process_{feed}")
    result = await stream_upload(request.stream(), content_type=request.headers.get("content-type"),
                                 content_length=request.headers.get("content-length"), contract=contract,
                                 s3=backend.s3, bucket=backend.bucket, user=user_name(user),
                                 max_bytes=backend.limits.max_bytes, part_bytes=backend.limits.part_bytes)
    result.status_url = f"api/files?raw_key={result.raw_key}"
    return result
