"""A stub external HTTP API: records every request, dedupes by Idempotency-Key, injects faults.

Any non-control path accepts records (201 {"accepted": n, "idempotency_key": key}). Control endpoints:
GET /_stub/requests[?path=], GET /_stub/stats, POST /_stub/faults, POST /_stub/reset.

An outage: POST /_stub/faults {"outage_for_s": 300} makes every request fail for the next 300 s, with
`outage_status` (default 503) or, with outage_status 0, a connection reset; {"outage_for_s": 0} ends it.
{"outage_on_next_request_s": 300} starts such an outage at the next request (a test's delivery, however long the
run takes to get there).

Run: python -m filegate_stack.stub_api --port 8150 --data-dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_stub/"


@dataclass
class Faults:
    latency_ms: int = 0
    fail_next: int = 0
    fail_status: int = 500
    retry_after: float | None = None
    timeout_next: int = 0
    # Longer than any sane client timeout, so "timeout" faults really time out.
    timeout_s: float = 30.0
    reset_next: int = 0
    outage_until: float = 0.0  # time.time() when the outage ends; set through outage_for_s
    outage_status: int = 503  # 0: reset the connection instead of answering
    outage_on_next_request_s: float = 0.0  # armed: the next request starts an outage this long


def count_records(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        return len(body["records"])
    return 1


class StubState:
    """All mutable state, behind one lock held only for bookkeeping (never while sleeping)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.lock = threading.Lock()
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        # key -> (status, body) of the first successful answer, replayed verbatim.
        self.responses: dict[str, tuple[int, bytes]] = {}
        self.in_flight: set[str] = set()
        self.records_by_path: Counter[str] = Counter()
        self.log_path = (data_dir / "requests.jsonl") if data_dir else None
        self.log_file = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_file = open(self.log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str)
        with self.lock:
            self.requests.append(entry)
            if self.log_file is not None:
                self.log_file.write(line + "\n")

    def take_fault(self) -> tuple[str | None, Faults]:
        """Decide this request's fault (one per request) and consume it; returns (kind, snapshot)."""
        with self.lock:
            faults = self.faults
            snapshot = Faults(**asdict(faults))
            if faults.outage_on_next_request_s > 0:
                faults.outage_until = time.time() + faults.outage_on_next_request_s
                faults.outage_on_next_request_s = 0.0
                snapshot = Faults(**asdict(faults))
            if time.time() < faults.outage_until:
                return "outage", snapshot
            if faults.reset_next > 0:
                faults.reset_next -= 1
                return "reset", snapshot
            if faults.timeout_next > 0:
                faults.timeout_next -= 1
                return "timeout", snapshot
            if faults.fail_next > 0:
                faults.fail_next -= 1
                return "fail", snapshot
            return None, snapshot

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": len(self.requests),
                "unique_keys": len(self.responses),
                "records_received": sum(self.records_by_path.values()),
                "records_by_path": dict(self.records_by_path),
                "faults": asdict(self.faults),
                "outage_left_s": max(self.faults.outage_until - time.time(), 0.0),
            }

    def reset(self) -> None:
        with self.lock:
            self.faults = Faults()
            self.requests.clear()
            self.responses.clear()
            self.in_flight.clear()
            self.records_by_path.clear()
            if self.log_file is not None and self.log_path is not None:
                self.log_file.close()
                self.log_file = open(self.log_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115


def make_handler(state: StubState, token: str | None) -> type[BaseHTTPRequestHandler]:
    class StubHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: benchmark clients reuse connections
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK
        # (about 40 ms per response on Linux). Real API servers set TCP_NODELAY; so does the stub.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("stub api: %s", format % args)

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return body

        def _read_body(self) -> tuple[bytes, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return raw, None
            try:
                return raw, json.loads(raw)
            except ValueError:
                return raw, None

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            raw, body = self._read_body()
            url = urlsplit(self.path)
            if url.path.startswith(CONTROL_PREFIX):
                self._control(method, url.path, parse_qs(url.query), body)
            else:
                self._serve(method, url.path, raw, body)

        def _control(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
            if method == "GET" and path == "/_stub/requests":
                wanted = query.get("path", [None])[0]
                with state.lock:
                    items = [r for r in state.requests if wanted is None or r["path"] == wanted]
                self._send(200, items)
            elif method == "GET" and path == "/_stub/stats":
                self._send(200, state.stats())
            elif method == "POST" and path == "/_stub/faults":
                known = set(Faults.__dataclass_fields__) | {"outage_for_s"}
                unknown = set(body or {}) - known
                if not isinstance(body, dict) or unknown:
                    self._send(400, {"error": f"expected a JSON object with keys from {sorted(known)}"})
                    return
                with state.lock:
                    for key, value in body.items():
                        if key == "outage_for_s":
                            state.faults.outage_until = time.time() + float(value) if value else 0.0
                            state.faults.outage_on_next_request_s = 0.0
                        else:
                            setattr(state.faults, key, value)
                    current = asdict(state.faults)
                self._send(200, current)
            elif method == "POST" and path == "/_stub/reset":
                state.reset()
                self._send(200, {"reset": True})
            else:
                self._send(404, {"error": f"unknown control endpoint {method} {path}"})

        def _serve(self, method: str, path: str, raw: bytes, body: Any) -> None:
            key = self.headers.get("Idempotency-Key")
            entry: dict[str, Any] = {
                "method": method,
                "path": path,
                "headers": dict(self.headers.items()),
                "body": body if body is not None else raw.decode("utf-8", "replace") or None,
                "idempotency_key": key,
                "received_at": datetime.now(UTC).isoformat(),
            }
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                entry["outcome"] = "unauthorized"
                state.record(entry)
                self._send(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
                return
            kind, faults = state.take_fault()
            entry["fault"] = kind
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            if kind == "outage":
                entry["outcome"] = f"outage {faults.outage_status or 'reset'}"
                state.record(entry)
                if not faults.outage_status:
                    self._reset_connection()
                else:
                    self._send(faults.outage_status, {"error": "stub API outage"})
                return
            if kind == "reset":
                entry["outcome"] = "reset"
                state.record(entry)
                self._reset_connection()
                return
            if kind == "timeout":
                entry["outcome"] = "timeout"
                state.record(entry)
                time.sleep(faults.timeout_s)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self._send(504, {"error": "stub timeout fault"})
                return
            if kind == "fail":
                entry["outcome"] = f"fail {faults.fail_status}"
                state.record(entry)
                headers = {}
                if faults.retry_after is not None:
                    headers["Retry-After"] = str(
                        int(faults.retry_after) if float(faults.retry_after).is_integer() else faults.retry_after
                    )
                self._send(faults.fail_status, {"error": "stub injected failure"}, headers)
                return
            self._accept(path, key, body, entry)

        def _accept(self, path: str, key: str | None, body: Any, entry: dict[str, Any]) -> None:
            records = count_records(body)
            with state.lock:
                replay = state.responses.get(key) if key else None
                conflict = key is not None and replay is None and key in state.in_flight
                if key and replay is None and not conflict:
                    state.in_flight.add(key)
            if replay is not None:
                entry["outcome"] = "replayed"
                state.record(entry)
                self._send(replay[0], replay[1], {"Idempotent-Replayed": "true"})
                return
            if conflict:
                # Same key still being processed by another request (as Stripe-style APIs answer).
                entry["outcome"] = "conflict"
                state.record(entry)
                self._send(409, {"error": "a request with this Idempotency-Key is in progress"})
                return
            payload = json.dumps({"accepted": records, "idempotency_key": key}).encode()
            with state.lock:
                if key:
                    state.responses[key] = (201, payload)
                    state.in_flight.discard(key)
                state.records_by_path[path] += records
            entry["outcome"] = "accepted"
            entry["records"] = records
            state.record(entry)
            self._send(201, payload)

        def _reset_connection(self) -> None:
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

    return StubHandler


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many concurrent benchmark clients connect at once


def build_server(port: int, data_dir: Path | None, token: str | None = None) -> tuple[StubServer, StubState]:
    state = StubState(data_dir)
    # FILEGATE_BIND_HOST=0.0.0.0 only inside a container (docker-compose.yaml); loopback everywhere else.
    server = StubServer((os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1"), port), make_handler(state, token))
    return server, state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stub external API that records what it receives")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get("FILEGATE_STUB_API_TOKEN") or None
    server, _state = build_server(args.port, args.data_dir, token)

    def stop(signum: int, _frame: Any) -> None:
        logger.info("signal %s: stopping stub API", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("stub API on http://127.0.0.1:%s (auth %s)", args.port, "on" if token else "off")
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
