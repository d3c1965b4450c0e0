from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from filegate.delivery.client import (
    ApiTarget,
    DeliveryResult,
    backoff_s,
    deliver_records,
    encode_body,
    idempotency_key,
    redact,
    retry_after_s,
    retryable_status,
)
from filegate.delivery.ratelimit import TokenBucket


def response_with(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_s(response_with({"Retry-After": "3"})) == 3.0
    assert retry_after_s(response_with({"Retry-After": "0.5"})) == 0.5
    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s(response_with({"Retry-After": "Fri, 20 Nov 2026 12:00:07 GMT"}), now) == 7.0
    assert retry_after_s(response_with({"Retry-After": "soon"})) is None
    assert retry_after_s(response_with({})) is None


def test_which_statuses_are_retried() -> None:
    assert all(retryable_status(s) for s in (500, 502, 503, 504, 408, 429, 409))
    assert not any(retryable_status(s) for s in (400, 401, 403, 404, 422))


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    target = ApiTarget(base_url="http://x", endpoint="/y", backoff_s=1.0, max_backoff_s=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        samples = [backoff_s(target, attempt) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 10  # jittered, not fixed


def test_idempotency_key_depends_on_content_batch_size_and_number() -> None:
    sha = "a" * 64
    assert idempotency_key(sha, 3, 50) == "fg-" + "a" * 32 + "-b50-000003"
    assert len({idempotency_key(sha, 1, 50), idempotency_key(sha, 2, 50), idempotency_key(sha, 1, 10),
                idempotency_key("b" * 64, 1, 50)}) == 4


def test_credentials_never_in_repr_and_scrubbed_from_texts() -> None:
    target = ApiTarget(base_url="http://x", endpoint="/y", headers={"Authorization": "Bearer s3cr3t-token"},
                       auth=("user", "pa55word"))
    assert "s3cr3t" not in repr(target) and "pa55word" not in repr(target)
    echoed = "got Authorization: Bearer s3cr3t-token and s3cr3t-token and pa55word"
    assert redact(echoed, target.secrets()) == "got Authorization: *** and *** and ***"


def test_envelope_wraps_records() -> None:
    assert encode_body([{"a": 1}], None) == b'[{"a":1}]'
    assert encode_body([{"a": 1}], "records") == b'{"records":[{"a":1}]}'


def test_result_names_failed_batches_and_whether_a_retry_helps() -> None:
    result = DeliveryResult(batches=4, posted=2, skipped=0, records_posted=20,
                            failed={3: "HTTP 400: bad", 4: "HTTP 503: busy"}, refused={3})
    assert "2 failed: #3 (HTTP 400: bad), #4 (HTTP 503: busy)" in result.describe()
    assert not result.ok and result.worth_retrying
    refused_only = DeliveryResult(batches=1, failed={1: "HTTP 422"}, refused={1})
    assert not refused_only.worth_retrying


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert all(abs(w - 0.1) < 1e-9 for w in waits[2:])
    assert abs(clock.now - 0.4) < 1e-9  # 6 requests at 10/s with a burst of 2


# -- redirects ------------------------------------------------------------------------------------------------

class _Calls:
    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def record_api_call(self, **row: object) -> None:
        self.rows.append(row)


def _server(answer: int, location: str | None, received: list[dict[str, object]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(answer)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_fails_the_batch(code: int) -> None:
    """A 3xx to another origin (here a second local server) must receive neither the records nor the key."""
    elsewhere: list[dict[str, object]] = []
    other = _server(200, None, elsewhere)
    hit: list[dict[str, object]] = []
    api = _server(code, f"http://127.0.0.1:{other.server_address[1]}/steal?token=abc", hit)
    try:
        target = ApiTarget(base_url=f"http://127.0.0.1:{api.server_address[1]}", endpoint="/ingest",
                           headers={"X-API-Key": "k3y-value-42"}, max_attempts=3, backoff_s=0.01)
        calls = _Calls()
        result = deliver_records([[{"id": 1}], [{"id": 2}]], target, file_id=7, sha256="c" * 64, batch_size=1,
                                 acknowledged=set(), recorder=calls)
    finally:
        api.shutdown()
        other.shutdown()
    assert elsewhere == []  # the other origin received nothing at all
    assert len(hit) == 2  # one attempt per batch: a redirect is not retried
    assert result.posted == 0 and set(result.failed) == {1, 2} and result.refused == {1, 2}
    assert not result.ok and not result.worth_retrying
    reason = result.failed[1]
    assert f"HTTP {code}" in reason and "redirect" in reason and "never followed" in reason
    assert f"127.0.0.1:{other.server_address[1]}" in reason and "another origin" in reason
    assert "token=abc" not in reason and "k3y-value-42" not in reason
    assert sorted((c["batch_no"], c["status_code"], c["acknowledged"]) for c in calls.rows) == [
        (1, code, False), (2, code, False)]
    assert all("never followed" in str(c["error"]) for c in calls.rows)


# -- Retry-After ----------------------------------------------------------------------------------------------

def _answers(statuses: list[tuple[int, str | None]]) -> tuple[ThreadingHTTPServer, list[float]]:
    """A server answering each POST with the next (status, Retry-After); returns it and the request times."""
    times: list[float] = []
    pending = list(statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            times.append(time.monotonic())
            status, retry_after = pending.pop(0) if pending else (201, None)
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, times


def test_a_short_retry_after_is_waited_in_the_task() -> None:
    server, times = _answers([(429, "0.3")])
    try:
        target = ApiTarget(base_url=f"http://127.0.0.1:{server.server_address[1]}", endpoint="/in", backoff_s=0.01)
        result = deliver_records([[{"id": 1}]], target, file_id=1, sha256="d" * 64, batch_size=1,
                                 acknowledged=set(), recorder=_Calls())
    finally:
        server.shutdown()
    assert result.ok and len(times) == 2 and times[1] - times[0] >= 0.3


def test_a_long_retry_after_is_left_to_the_next_try_without_sleeping() -> None:
    """Sleeping through a 2-minute Retry-After would hold a worker slot: the batch is handed back at once, with
    the wait the API asked for, and the deliver step schedules its next try after it."""
    server, times = _answers([(429, "120"), (503, "120")])
    try:
        target = ApiTarget(base_url=f"http://127.0.0.1:{server.server_address[1]}", endpoint="/in", backoff_s=0.01,
                           max_wait_in_task_s=30)
        started = time.monotonic()
        result = deliver_records([[{"id": 1}], [{"id": 2}], [{"id": 3}]], target, file_id=1, sha256="e" * 64,
                                 batch_size=1, acknowledged=set(), recorder=_Calls())
    finally:
        server.shutdown()
    assert time.monotonic() - started < 60 and len(times) == 3  # not the 120 s asked; each batch posted once
    assert result.retry_after_s == 120 and result.worth_retrying and result.posted == 1
    assert "the API asked to wait 120 s: left to the next try" in result.failed[1]
