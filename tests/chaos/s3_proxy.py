"""A fault-injecting HTTP proxy in front of moto's S3: the chaos run points the stack's S3 endpoint at it.

Every request is forwarded to moto as it came (moto does not check signatures, so the Host header may change);
while a fault window is open (`open_window`), a share of the requests gets one of: a 500 `InternalError`, a 503
`SlowDown`, a connection reset before any answer, or a slow read (the answer trickled out over seconds). Each
injected fault is counted by kind.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("s3_500", "s3_slowdown", "s3_reset", "s3_slow_read")
ERROR_BODY = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
              '<RequestId>chaos</RequestId></Error>')
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultState:
    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.window_until = 0.0
        self.share = 0.0
        self.injected: Counter[str] = Counter()
        self.times: list[tuple[float, str]] = []  # (time.time(), kind) of every injected fault

    def open_window(self, seconds: float, share: float) -> None:
        with self.lock:
            self.window_until, self.share = time.monotonic() + seconds, share

    def pick(self) -> str | None:
        with self.lock:
            if time.monotonic() > self.window_until or self.rng.random() >= self.share:
                return None
            kind = self.rng.choice(KINDS)
            self.injected[kind] += 1
            self.times.append((time.time(), kind))
            return kind


def _handler(upstream: tuple[str, int], state: FaultState) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the run prints its own log
            return

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = state.pick()
            if fault == "s3_reset":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                return
            if fault in ("s3_500", "s3_slowdown"):
                code, status, message = (
                    ("InternalError", 500, "We encountered an internal error.") if fault == "s3_500"
                    else ("SlowDown", 503, "Please reduce your request rate."))
                payload = ERROR_BODY.format(code=code, message=message).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn = http.client.HTTPConnection(*upstream, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                length_header = response.getheader("Content-Length")
                self.send_header("Content-Length", length_header if self.command == "HEAD" and length_header
                                 else str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "s3_slow_read":  # the body trickles out: clients must wait or time out and retry
                    for start in range(0, len(data), max(1, len(data) // 8)):
                        self.wfile.write(data[start : start + max(1, len(data) // 8)])
                        self.wfile.flush()
                        time.sleep(0.5)
                else:
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (a timeout, a reset we injected) close their end: expected here, not worth a trace.
        return


class S3FaultProxy:
    def __init__(self, upstream_port: int, *, seed: int) -> None:
        self.state = FaultState(seed)
        self.server = _Server(("127.0.0.1", 0), _handler(("127.0.0.1", upstream_port), self.state))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> S3FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
