"""The Filegate REST API: files, their history, API calls and quality; counts, feed summaries and aggregates;
failures; daily reports; and the upload endpoint. Every route needs an authenticated Airflow user, and what it
returns follows the Airflow permissions of each feed's DAG (auth.py states the rule; routes only ask `Access`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from filegate.orchestration.webapp import actions, links
from filegate.orchestration.webapp.auth import Access, CurrentUser, feed_dag_id, may_trigger, require_trigger, user_name
from filegate.orchestration.webapp.backend import Backend, get_backend
from filegate.orchestration.webapp.models import (
    AggregatesOut,
    CountRow,
    Counts,
    Deliveries,
    DeliveryFeed,
    DeliverySlot,
    FeedInfo,
    FeedSummary,
    FileDetail,
    FilePage,
    Me,
    ReportInfo,
    ReprocessIn,
    ReprocessOut,
    SchemaHistoryOut,
    Series,
    Step,
)
from filegate.orchestration.webapp.multipart import UploadResult, stream_upload
from filegate.reporting.aggregates import OutputTooLarge, feed_aggregates
from filegate.reporting.archive import REPORT_FILES, list_report_days, report_key
from filegate.reporting.isolated import IsolatedError, WorkerBusy, WorkerTimedOut
from filegate.status.lifecycle import Status
from filegate.status.queries import FileFilter, Page, Period
from filegate.status.store import Actor

FEED_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_PERIOD_DAYS = 400
EPOCH = date(2000, 1, 1)
BackendDep = Annotated[Backend, Depends(get_backend)]
FeedPath = Annotated[str, Path(pattern=FEED_PATTERN, description="a feed name, e.g. `orders`")]
FeedQuery = Annotated[str | None, Query(pattern=FEED_PATTERN, description="only this feed; 403 unless you may read "
                                                                          "its DAG `process_<feed>`")]
READ_RULE = "Only rows of feeds whose DAG `process_<feed>` you may read."
FEED_RULE = "Needs read permission on the DAG `process_<feed>` (403 otherwise)."
REPROCESS_STATUSES = (Status.FAILED.value, Status.QUARANTINED.value)
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
    return Me(name=user_name(user), role=getattr(user, "role", None),
              can_reprocess=may_trigger(user, actions.REPROCESS_DAG_ID))


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
    row = detail.file
    downloads = {kind: f"api/files/{file_id}/download/{kind}" for kind in actions.available_downloads(row)}
    can_reprocess = (row["status"] in REPROCESS_STATUSES and row["sha256"] is not None
                     and may_trigger(user, actions.REPROCESS_DAG_ID))
    return {"file": row, "history": detail.history, "api_calls": detail.api_calls,
            "quality": detail.quality, "steps": steps, "outputs": _outputs(backend.bucket, row["outputs"]),
            "downloads": downloads, "can_reprocess": can_reprocess,
            "schema_drift": backend.store.schemas.drift_of(file_id)}


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


@router.get("/files/{file_id}/lineage",
            summary="A file's OpenLineage run: raw object in, Parquet keys / table / API endpoint / rejected rows out, "
                    "with schema, row counts and data-quality assertions",
            description=FILE_RULE + " `received`: the events the local lineage receiver holds for the file "
                                    "(null without one).")
def file_lineage(file_id: int, user: CurrentUser, backend: BackendDep, access: Access) -> dict[str, Any]:
    from filegate.orchestration.webapp.lineage_view import file_lineage as lineage_of

    _file_or_404(backend, file_id, access)
    return lineage_of(backend.store, backend.s3, backend.bucket, file_id)


DownloadKind = Annotated[str, Path(pattern="^(" + "|".join(actions.DOWNLOAD_KINDS) + ")$",
                                   description="; ".join(f"`{k}`: {v}" for k, v in actions.DOWNLOAD_KINDS.items()))]


@router.get("/files/{file_id}/download/{kind}",
            summary="Download a file's raw copy, rejected rows (CSV), reason or summary (JSON), streamed from S3",
            description=FILE_RULE + " 404 too when the file has no such output (a processed file has no reason, "
                                    "a file without rejected rows no CSV); `downloads` in the file's detail lists "
                                    "what it has.",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download(file_id: int, kind: DownloadKind, user: CurrentUser, backend: BackendDep,
             access: Access) -> StreamingResponse:
    row = backend.queries.get_file(file_id)
    if row is None or row["feed"] not in access.feeds:
        raise _no_file(file_id)
    key = actions.download_key(kind, row)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"file {file_id} has no {kind} download")
    try:
        obj = backend.s3.get_object(Bucket=backend.bucket, Key=key)
    except backend.s3.exceptions.NoSuchKey as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the {kind} of file {file_id} is gone from S3") from exc
    name = actions.download_name(kind, key)
    headers = {"Content-Disposition": _attachment(name), "X-Content-Type-Options": "nosniff",
               "Cache-Control": "no-store"}
    if obj.get("ContentLength") is not None:
        headers["Content-Length"] = str(obj["ContentLength"])
    media = {"rejected": "text/csv; charset=utf-8", "reason": "application/json", "summary": "application/json"}
    return StreamingResponse(actions.s3_chunks(obj["Body"]), headers=headers,
                             media_type=media.get(kind, "application/octet-stream"))


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


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


@router.get("/series", response_model=Series,
            summary="Per day over a period (default 7 days): files by status, rows rejected by feed, processing "
                    "latency percentiles",
            description=READ_RULE + " Days are UTC days of arrival; the overview's charts draw this.")
def series(user: CurrentUser, backend: BackendDep, access: Access,
           since: date | None = None, until: date | None = None, feed: FeedQuery = None) -> Series:
    first, last, period = _period(since, until)
    data = backend.queries.daily_series(period, feed=feed, feeds=access.scope(feed))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return Series(since=first, until=last, days=days, **data)


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


@router.get("/feeds/{feed}/schemas", response_model=SchemaHistoryOut,
            summary="A feed's schema versions, oldest first, each with the file that introduced it",
            description=FEED_RULE)
def feed_schemas(feed: FeedPath, user: CurrentUser, backend: BackendDep, access: Access) -> SchemaHistoryOut:
    access.require(feed)
    contract = _known_feed(backend, feed, access)
    current = backend.store.schemas.current(feed)
    return SchemaHistoryOut(feed=feed, policy=contract.schema_drift, current=current and current["version"],
                            versions=backend.store.schemas.versions(feed))


@router.get("/feeds/{feed}/aggregates", response_model=AggregatesOut,
            summary="A feed's published rows, e.g. marketplace totals per seller, product and day",
            description=FEED_RULE + " The Parquet fallback is decoded in a bounded child process, never in the "
                                    "api-server.",
            responses={413: {"description": "over the per-request Parquet budget, or the reader's memory limit"},
                       502: {"description": "the Parquet reader crashed (the api-server did not)"},
                       503: {"description": "every Parquet reader is busy; retry after `Retry-After` seconds"},
                       504: {"description": "the Parquet reader ran past its time limit and was stopped"}})
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
    except OutputTooLarge as exc:  # the byte budget, or the reader's memory limit
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    # The Parquet fallback decodes in a child process: its failure is this request's, never the api-server's.
    except WorkerTimedOut as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from exc
    except WorkerBusy as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from exc
    except IsolatedError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
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


@router.post("/reprocess", response_model=ReprocessOut, status_code=status.HTTP_201_CREATED,
             summary="Reprocess failed or quarantined files: triggers a `reprocess_files` run with their ids",
             description="Needs permission to trigger the DAG `reprocess_files` (403 otherwise) and read permission "
                         "on each file's feed (a file of another feed: 404, as if it did not exist). Every file must "
                         "be failed or quarantined and have a raw copy (409 otherwise). Each file's history records "
                         "who asked, with the run id.")
def reprocess(body: ReprocessIn, request: Request, user: CurrentUser, backend: BackendDep,
              access: Access) -> ReprocessOut:
    require_trigger(user, actions.REPROCESS_DAG_ID, what="reprocess files")
    ids = sorted(set(body.file_ids))
    rows = {r["id"]: r for r in backend.queries.select_files(file_ids=ids) if r["feed"] in access.feeds}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no file with id {', '.join(map(str, missing))} in the feeds you may read")
    wrong = [f"#{i} is {rows[i]['status']}" for i in ids if rows[i]["status"] not in REPROCESS_STATUSES]
    no_raw = [f"#{i}" for i in ids if rows[i]["sha256"] is None]
    if wrong or no_raw:
        raise HTTPException(status.HTTP_409_CONFLICT, "; ".join(
            ([f"only failed or quarantined files are reprocessed here: {', '.join(wrong)}"] if wrong else [])
            + ([f"{', '.join(no_raw)} never reached raw/, so there is nothing to reprocess"] if no_raw else [])))
    name = user_name(user)
    try:
        run = actions.trigger_reprocess(ids, user=name, from_ui=bool(request.headers.get("referer")))
    except actions.TriggerRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    backend.store.record_note(ids, f"reprocess requested by {name} (run {run.run_id})",
                              Actor(dag_id=run.dag_id, run_id=run.run_id))
    return ReprocessOut(dag_id=run.dag_id, run_id=run.run_id, file_ids=ids, requested_by=name, paused=run.paused,
                        run_url=links.dag_run_url(run.dag_id, run.run_id))


@router.get("/deliveries", response_model=Deliveries,
            summary="Expected deliveries: each slot of the feeds with an `expect:` block and its state (expected, "
                    "arrived, late, missed), over local days (default: the last 13 days and tomorrow)",
            description=READ_RULE + " Days are the feeds' local days (each feed's `expect.timezone`).")
def deliveries(user: CurrentUser, backend: BackendDep, access: Access,
               since: Annotated[date | None, Query(description="first local day")] = None,
               until: Annotated[date | None, Query(description="last local day (default tomorrow)")] = None,
               feed: FeedQuery = None) -> Deliveries:
    until = until or datetime.now(UTC).date() + timedelta(days=1)
    first, last, _ = _period(since, until, default_days=14)
    scope = access.scope(feed)
    feeds = [DeliveryFeed(feed=c.name, timezone=c.expect.timezone, schedule=_schedule_text(c.expect),
                          files=c.expect.files, grace_minutes=c.expect.grace_minutes)
             for c in backend.contracts() if c.expect is not None and c.name in scope]
    zones = {f.feed: f.timezone for f in feeds}
    slots = [_slot_out(row, zones.get(row["feed"], "UTC"))
             for row in backend.store.slots.between(first, last, feed=feed, feeds=scope)]
    return Deliveries(since=first, until=last, days=[first + timedelta(days=n) for n in range((last - first).days + 1)],
                      feeds=feeds, slots=slots)


def _schedule_text(expect: Any) -> str:
    if expect.cron is not None:
        return f"cron {expect.cron}"
    days = expect.business_days
    return f"{', '.join(days.weekdays)} at {', '.join(days.at)}"


def _slot_out(row: dict[str, Any], timezone: str) -> DeliverySlot:
    from zoneinfo import ZoneInfo

    local = row["expected_at"].astimezone(ZoneInfo(timezone))
    return DeliverySlot(**{k: row[k] for k in DeliverySlot.model_fields if k in row and k != "files"},
                        local_time=f"{local:%H:%M} {local.tzname()}", files=row["files"])
