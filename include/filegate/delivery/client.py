"""Posts a file's records in batches. Each batch carries an idempotency key derived from the file's sha256
and the batch number; batches already acknowledged are skipped, so a retry or re-run never posts twice."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

log = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class CallRecorder(Protocol):
    def record_api_call(self, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class ApiTarget:
    base_url: str
    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    concurrency: int = 4

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.endpoint


@dataclass
class DeliveryResult:
    batches: int = 0
    posted: int = 0
    skipped: int = 0
    records_posted: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def describe(self) -> str:
        text = f"{self.batches} batches: {self.posted} posted, {self.skipped} already acknowledged"
        if self.failed:
            shown = ", ".join(f"#{n} ({why})" for n, why in sorted(self.failed.items())[:5])
            text += f"; {len(self.failed)} failed: {shown}"
        return text


class DeliveryError(RuntimeError):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(f"API delivery incomplete: {result.describe()}")
        self.result = result


def idempotency_key(sha256: str, batch_no: int, batch_size: int) -> str:
    return f"fg-{sha256[:32]}-b{batch_size}-{batch_no:06d}"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def post_batch(session: requests.Session, target: ApiTarget, records: list[dict[str, Any]], *, key: str,
               file_id: int, batch_no: int, recorder: CallRecorder) -> str | None:
    """Posts one batch with retries; returns None when acknowledged, else the last error."""
    body = json.dumps(records, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **target.headers}
    last_error = "not attempted"
    for attempt in range(1, target.max_attempts + 1):
        started = time.monotonic()
        status: int | None = None
        excerpt: str | None = None
        wait: float | None = None
        try:
            response = session.post(target.url, data=body, headers=headers, auth=target.auth,
                                    timeout=target.timeout_s)
            status = response.status_code
            excerpt = response.text[:500]
            if 200 <= status < 300:
                recorder.record_api_call(file_id=file_id, batch_no=batch_no, idempotency_key=key, url=target.url,
                                         records=len(records), attempt=attempt, status_code=status,
                                         latency_ms=1000 * (time.monotonic() - started), acknowledged=True,
                                         response_excerpt=excerpt)
                return None
            last_error = f"HTTP {status}: {excerpt[:200]}"
            retryable = status in RETRYABLE_STATUS
            wait = _retry_after(response) if status in (429, 503) else None
        except (requests.ConnectionError, requests.Timeout) as exc:
            last_error = f"{type(exc).__name__}: {exc}"[:300]
            retryable = True
        recorder.record_api_call(file_id=file_id, batch_no=batch_no, idempotency_key=key, url=target.url,
                                 records=len(records), attempt=attempt, status_code=status,
                                 latency_ms=1000 * (time.monotonic() - started), acknowledged=False,
                                 response_excerpt=excerpt, error=last_error)
        if not retryable or attempt == target.max_attempts:
            break
        if wait is None:
            backoff = min(target.backoff_s * 2 ** (attempt - 1), target.max_backoff_s)
            wait = backoff * (0.5 + random.random() / 2)  # jitter keeps retrying clients apart
        log.warning("batch %s of file %s: %s; retrying in %.1f s (attempt %d/%d)", batch_no, file_id,
                    last_error, wait, attempt, target.max_attempts)
        time.sleep(wait)
    return last_error


def deliver_records(batches: Iterable[list[dict[str, Any]]], target: ApiTarget, *, file_id: int, sha256: str,
                    batch_size: int, acknowledged: set[str], recorder: CallRecorder,
                    session: requests.Session | None = None) -> DeliveryResult:
    result = DeliveryResult()
    session = session or requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=target.concurrency, pool_maxsize=target.concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def send(numbered: tuple[int, list[dict[str, Any]]]) -> tuple[int, int, str | None]:
        batch_no, records = numbered
        key = idempotency_key(sha256, batch_no, batch_size)
        error = post_batch(session, target, records, key=key, file_id=file_id, batch_no=batch_no,
                           recorder=recorder)
        return batch_no, len(records), error

    todo = []
    for batch_no, records in enumerate(batches, start=1):
        result.batches += 1
        if idempotency_key(sha256, batch_no, batch_size) in acknowledged:
            result.skipped += 1
        else:
            todo.append((batch_no, records))
    with ThreadPoolExecutor(max_workers=target.concurrency, thread_name_prefix="filegate-post") as pool:
        for batch_no, count, error in pool.map(send, todo):
            if error is None:
                result.posted += 1
                result.records_posted += count
            else:
                result.failed[batch_no] = error
    log.info("file %s: %s", file_id, result.describe())
    return result
