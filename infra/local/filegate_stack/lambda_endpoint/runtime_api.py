"""The Lambda Runtime API that awslambdaric polls: next invocation, its response or error, init errors."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from filegate_stack.lambda_endpoint.functions import function_arn

if TYPE_CHECKING:
    from filegate_stack.lambda_endpoint.sandbox import FunctionRuntime

logger = logging.getLogger(__name__)


def runtime_api_handler(runtime: FunctionRuntime) -> type[BaseHTTPRequestHandler]:
    prefix = "/2018-06-01/runtime"

    class RuntimeAPIHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("runtime api %s: %s", runtime.spec.name, format % args)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path != f"{prefix}/invocation/next":
                self._reply(404, b'{"errorType":"NotFound"}')
                return
            inv = runtime.next_invocation()
            if inv is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self._reply(500, b'{"errorType":"Runtime.Replaced"}')
                return
            deadline_ms = int((time.time() + runtime.spec.timeout) * 1000)
            headers = {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": function_arn(runtime.spec.name),
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            }
            if inv.client_context:
                headers["Lambda-Runtime-Client-Context"] = inv.client_context
            self._reply(200, inv.payload, headers)

        def do_POST(self) -> None:
            body = self._body()
            parts = self.path.split("/")
            if self.path == f"{prefix}/init/error":
                runtime.init_failed(body)
                self._reply(202, b'{"status":"OK"}')
                return
            # /2018-06-01/runtime/invocation/{id}/response|error
            if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
                error = "Unhandled" if parts[5] == "error" else None
                if runtime.complete(parts[4], body, error):
                    self._reply(202, b'{"status":"OK"}')
                else:
                    self._reply(400, b'{"errorType":"InvalidRequestID"}')
                return
            self._reply(404, b'{"errorType":"NotFound"}')

    return RuntimeAPIHandler
