"""Posts a file's records in batches. Each batch carries an idempotency key derived from the file's sha256 and
the batch number; batches already acknowledged are skipped, so a retry or re-run never posts a record twice.

Batches stream from the payload reader through a bounded window of in-flight requests (at most twice the
concurrency), so memory stays flat whatever the file's size. Every attempt becomes an `api_call` row.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
import requests.adapters

from filegate.delivery.ratelimit import TokenBucket

log = logging.getLogger(__name__)
# 409: an API implementing the Idempotency-Key draft answers 409 while a request with the same key is still
# in progress (e.g. one sent by a task that was killed mid-post); trying again later gets the stored answer.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
EXCERPT_CHARS = 500
REDACTED = "***"


class CallRecorder(Protocol):
    def record_api_call(self, *, file_id: int, batch_no: int, idempotency_key: str, url: str, records: int,
                        attempt: int, status_code: int | None, latency_ms: float, acknowledged: bool,
                        response_excerpt: str | None = None, error: str | None = None) -> None: ...


@dataclass(frozen=True)
class ApiTarget:
    """Where and how to post. `headers` and `auth` carry credentials: they never appear in repr() or logs."""

    base_url: str
    endpoint: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0
    # A longer wait (an API's Retry-After) ends this try's attempts at the batch instead of sleeping: the step
    # hands the file to the task's next try, after that time, so a waiting delivery holds no worker slot.
    max_wait_in_task_s: float = 30.0
    concurrency: int = 4
    rate_limit_per_s: float | None = None
    envelope: str | None = None
    stop_after_failed_batches: int = 5

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.endpoint

    def secrets(self) -> list[str]:
        """Credential values to scrub from anything recorded or logged (a server may echo them back)."""
        values = [v for v in self.headers.values() if v]
        for value in list(values):
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in {"bearer", "basic", "token"}:
                values.append(token)
        if self.auth and self.auth[1]:
            values.append(self.auth[1])
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def redact(text: str | None, secrets: Iterable[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


@dataclass
class DeliveryResult:
    batches: int = 0
    posted: int = 0
    skipped: int = 0
    records_posted: int = 0
    attempts: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    refused: set[int] = field(default_factory=set)  # failed batches the API refused (4xx): a retry cannot help
    not_attempted_from: int | None = None
    retry_after_s: float | None = None  # the longest wait the API asked for (Retry-After) that was not slept

    @property
    def ok(self) -> bool:
        return not self.failed and self.not_attempted_from is None

    @property
    def worth_retrying(self) -> bool:
        """False when every failed batch was refused by the API: the same request would be refused again."""
        return not self.ok and (self.not_attempted_from is not None or set(self.failed) != self.refused)

    def describe(self) -> str:
        text = (f"{self.batches} batch(es): {self.posted} posted ({self.records_posted} records), "
                f"{self.skipped} already acknowledged")
        if self.failed:
            numbers = sorted(self.failed)
            shown = ", ".join(f"#{n} ({self.failed[n]})" for n in numbers[:3])
            more = f", and #{', #'.join(map(str, numbers[3:20]))}" if len(numbers) > 3 else ""
            more += " …" if len(numbers) > 20 else ""
            text += f"; {len(numbers)} failed: {shown}{more}"
        if self.not_attempted_from is not None:
            text += (f"; stopped after {len(self.failed)} failed batches in a row, batches from "
                     f"#{self.not_attempted_from} on not attempted")
        return text


class DeliveryError(RuntimeError):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(f"API delivery incomplete: {result.describe()}")
        self.result = result


def idempotency_key(sha256: str, batch_no: int, batch_size: int) -> str:
    """Same file content + same batch size ⇒ same batches ⇒ same keys, whichever run or retry posts them."""
    return f"fg-{sha256[:32]}-b{batch_size}-{batch_no:06d}"


def retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


def retry_after_s(response: requests.Response, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def backoff_s(target: ApiTarget, attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so retrying clients spread out."""
    ceiling = min(target.backoff_s * 2 ** (attempt - 1), target.max_backoff_s)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def encode_body(records: list[dict[str, Any]], envelope: str | None) -> bytes:
    payload: Any = {envelope: records} if envelope else records
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, without user info, path or query (which may carry tokens)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "") if parts.scheme else "(relative)"


def redirect_reason(target: ApiTarget, response: requests.Response) -> str:
    """Why a redirect answer failed the batch: where it pointed (origin only) and what to change."""
    location = response.headers.get("Location")
    if location is None:
        where = "without a Location"
    else:
        absolute = urllib.parse.urljoin(target.url, location)
        same = _origin(absolute) == _origin(target.url)
        where = f"to {_origin(absolute)}" + (" (same origin)" if same else " (another origin)")
    reason = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    return (f"{reason}: the API redirected {where}; redirects are never followed (the records and credentials "
            f"would go to the redirect's host), so nothing was sent there. Set the target's base_url/endpoint to "
            f"the final URL")


@dataclass(frozen=True)
class BatchOutcome:
    error: str | None  # None: acknowledged
    attempts: int
    refused: bool = False  # the API answered with a status not worth retrying
    retry_after_s: float | None = None  # the API asked to wait longer than max_wait_in_task_s: not slept here


def post_batch(session: requests.Session, target: ApiTarget, records: list[dict[str, Any]], *, key: str,
               file_id: int, batch_no: int, recorder: CallRecorder, limiter: TokenBucket | None = None,
               secrets: list[str] | None = None) -> BatchOutcome:
    """Posts one batch, retrying what may succeed later; every attempt is recorded."""
    secrets = target.secrets() if secrets is None else secrets
    body = encode_body(records, target.envelope)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **target.headers}
    last_error = "not attempted"
    attempt = 0
    for attempt in range(1, target.max_attempts + 1):
        if limiter is not None:
            limiter.acquire()
        started = time.monotonic()
        status: int | None = None
        excerpt: str | None = None
        wait_s: float | None = None
        try:
            # Never follow a redirect: requests would re-send the body and headers such as X-API-Key to
            # whatever host the Location names. A redirect fails the attempt, and is not retried.
            response = session.post(target.url, data=body, headers=headers, auth=target.auth,
                                    timeout=target.timeout_s, allow_redirects=False)
            status = response.status_code
            excerpt = redact(response.text[:EXCERPT_CHARS], secrets)
            if 300 <= status < 400:
                last_error = redact(redirect_reason(target, response), secrets) or ""
                recorder.record_api_call(file_id=file_id, batch_no=batch_no, idempotency_key=key, url=target.url,
                                         records=len(records), attempt=attempt, status_code=status,
                                         latency_ms=1000 * (time.monotonic() - started), acknowledged=False,
                                         response_excerpt=excerpt, error=last_error)
                return BatchOutcome(last_error, attempt, refused=True)
            if 200 <= status < 300:
                recorder.record_api_call(file_id=file_id, batch_no=batch_no, idempotency_key=key, url=target.url,
                                         records=len(records), attempt=attempt, status_code=status,
                                         latency_ms=1000 * (time.monotonic() - started), acknowledged=True,
                                         response_excerpt=excerpt)
                return BatchOutcome(None, attempt)
            last_error = f"HTTP {status} {response.reason or ''}".rstrip() + f": {(excerpt or '')[:200]}"
            retryable = retryable_status(status)
            if retryable:
                retry_after = retry_after_s(response)
                wait_s = min(retry_after, target.max_retry_after_s) if retry_after is not None else None
        except (requests.ConnectionError, requests.Timeout) as exc:
            last_error = redact(f"{type(exc).__name__}: {exc}"[:300], secrets) or ""
            retryable = True
        recorder.record_api_call(file_id=file_id, batch_no=batch_no, idempotency_key=key, url=target.url,
                                 records=len(records), attempt=attempt, status_code=status,
                                 latency_ms=1000 * (time.monotonic() - started), acknowledged=False,
                                 response_excerpt=excerpt, error=last_error)
        if not retryable:
            return BatchOutcome(last_error + " (not retried: the API refused the request)", attempt, refused=True)
        if wait_s is not None and wait_s > target.max_wait_in_task_s:
            last_error += f" (the API asked to wait {wait_s:.0f} s: left to the next try)"
            return BatchOutcome(last_error, attempt, retry_after_s=wait_s)
        if attempt == target.max_attempts:
            last_error += f" (gave up after {attempt} attempts)"
            break
        if wait_s is None:
            wait_s = backoff_s(target, attempt)
        log.warning("file #%s batch %s: %s; retrying in %.2f s (attempt %d/%d)", file_id, batch_no, last_error,
                    wait_s, attempt, target.max_attempts)
        time.sleep(wait_s)
    return BatchOutcome(last_error, attempt)


def _session(target: ApiTarget) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(target.concurrency, 1),
                                            max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class SharedLimits:
    """A target's concurrency and rate limit, shared by every file being delivered to it at once."""

    slots: threading.BoundedSemaphore
    limiter: TokenBucket | None

    @classmethod
    def for_target(cls, target: ApiTarget) -> SharedLimits:
        return cls(threading.BoundedSemaphore(max(target.concurrency, 1)),
                   TokenBucket(target.rate_limit_per_s) if target.rate_limit_per_s else None)


def deliver_records(batches: Iterable[list[dict[str, Any]]], target: ApiTarget, *, file_id: int, sha256: str,
                    batch_size: int, acknowledged: set[str], recorder: CallRecorder,
                    session: requests.Session | None = None, shared: SharedLimits | None = None) -> DeliveryResult:
    """Posts every batch not yet acknowledged, at most `target.concurrency` at a time (`shared`: limits held
    with other files delivered at the same time, so that together they keep the target's concurrency and rate).

    Reading stops early after `target.stop_after_failed_batches` batches in a row fail for good (an API that
    refuses everything, e.g. 401, should not be hammered with thousands of batches); what was not attempted is
    reported and a re-run posts it.
    """
    result = DeliveryResult()
    own_session = session is None
    session = session or _session(target)
    shared = shared or SharedLimits.for_target(target)
    limiter = shared.limiter
    secrets = target.secrets()
    window = max(2 * target.concurrency, 1)
    lock = threading.Lock()
    failed_in_a_row = 0

    def send(batch_no: int, records: list[dict[str, Any]]) -> tuple[int, int, BatchOutcome]:
        key = idempotency_key(sha256, batch_no, batch_size)
        with shared.slots:
            outcome = post_batch(session, target, records, key=key, file_id=file_id, batch_no=batch_no,
                                 recorder=recorder, limiter=limiter, secrets=secrets)
        return batch_no, len(records), outcome

    def collect(done: Iterable[Future[tuple[int, int, BatchOutcome]]]) -> None:
        nonlocal failed_in_a_row
        for future in done:
            batch_no, count, outcome = future.result()
            with lock:
                result.attempts += outcome.attempts
                if outcome.error is None:
                    result.posted += 1
                    result.records_posted += count
                    failed_in_a_row = 0
                else:
                    result.failed[batch_no] = outcome.error
                    if outcome.refused:
                        result.refused.add(batch_no)
                    if outcome.retry_after_s is not None:
                        result.retry_after_s = max(result.retry_after_s or 0.0, outcome.retry_after_s)
                    failed_in_a_row += 1

    try:
        with ThreadPoolExecutor(max_workers=max(target.concurrency, 1), thread_name_prefix="filegate-post") as pool:
            in_flight: set[Future[tuple[int, int, BatchOutcome]]] = set()
            for batch_no, records in enumerate(batches, start=1):
                if failed_in_a_row >= target.stop_after_failed_batches:
                    result.not_attempted_from = batch_no
                    break
                result.batches += 1
                if idempotency_key(sha256, batch_no, batch_size) in acknowledged:
                    result.skipped += 1
                    continue
                if len(in_flight) >= window:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
                in_flight.add(pool.submit(send, batch_no, records))
            collect(wait(in_flight).done)
    finally:
        if own_session:
            session.close()
    log.info("file #%s: %s", file_id, result.describe())
    return result
