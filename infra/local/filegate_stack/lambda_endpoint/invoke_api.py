"""The Lambda Invoke API that boto3 calls: Invoke (RequestResponse, Event, DryRun), GetFunction, a health check."""

from __future__ import annotations

import base64
import json
import logging
import sys
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from filegate_stack.lambda_endpoint.functions import function_arn
from filegate_stack.lambda_endpoint.sandbox import Invocation

if TYPE_CHECKING:
    from filegate_stack.lambda_endpoint.server import LambdaEndpoint

logger = logging.getLogger(__name__)
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
# How long an invocation may wait for a runtime to pick it up before we give up on the runtime.
PICKUP_TIMEOUT_S = 300.0


def _function_name(raw: str) -> str:
    # Accept a name, name:qualifier, or a full/partial ARN (arn:aws:lambda:region:acct:function:name[:q]).
    if raw.startswith("arn:"):
        parts = raw.split(":")
        return parts[6] if len(parts) > 6 else raw
    return raw.split(":", 1)[0]


def invoke_api_handler(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class InvokeAPIHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("invoke api: %s", format % args)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                   request_id: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            # Exactly one id per response, the invocation's own when there is one: botocore joins repeated
            # headers with ", ", and the caller records this id as the invocation's.
            self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, error_type: str, message: str) -> None:
            body = json.dumps({"Type": "User", "Message": message, "message": message}).encode()
            self._reply(status, body, {"x-amzn-ErrorType": error_type})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_endpoint/health":
                names = sorted(endpoint.config.functions)
                self._reply(200, json.dumps({"status": "ok", "functions": names}).encode())
                return
            parts = path.strip("/").split("/")
            # GetFunction, enough for `aws lambda get-function` and existence checks.
            if len(parts) == 3 and parts[:2] == ["2015-03-31", "functions"]:
                spec = endpoint.config.functions.get(_function_name(parts[2]))
                if spec is None:
                    self._error(404, "ResourceNotFoundException", f"Function not found: {function_arn(parts[2])}")
                    return
                conf = {
                    "FunctionName": spec.name,
                    "FunctionArn": function_arn(spec.name),
                    "Handler": spec.handler,
                    "Timeout": int(spec.timeout),
                    "MemorySize": spec.memory,
                    "Runtime": f"python{sys.version_info.major}.{sys.version_info.minor}",
                    "State": "Active",
                    "Version": "$LATEST",
                }
                self._reply(200, json.dumps({"Configuration": conf}).encode())
                return
            self._error(404, "UnknownOperationException", f"unsupported path {path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            parts = path.strip("/").split("/")
            if not (len(parts) == 4 and parts[:2] == ["2015-03-31", "functions"] and parts[3] == "invocations"):
                self._error(404, "UnknownOperationException", f"unsupported path {path}")
                return
            name = _function_name(parts[2])
            runtime = endpoint.runtime(name)
            if runtime is None:
                self._error(404, "ResourceNotFoundException", f"Function not found: {function_arn(name)}")
                return
            kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
            if kind == "DryRun":
                self._reply(204)
                return
            if kind not in ("RequestResponse", "Event"):
                self._error(400, "InvalidParameterValueException", f"bad invocation type {kind}")
                return
            if kind == "RequestResponse" and len(payload) > MAX_SYNC_PAYLOAD:
                self._error(
                    413,
                    "RequestTooLargeException",
                    "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
                )
                return
            payload = payload or b"{}"
            try:
                json.loads(payload)
            except ValueError:
                self._error(400, "InvalidRequestContentException", "Could not parse request body into json")
                return
            inv = Invocation(payload, client_context=_decode_client_context(self.headers.get("X-Amz-Client-Context")))
            try:
                runtime.submit(inv)
            except RuntimeError as exc:
                self._error(503, "ServiceException", str(exc))
                return
            if kind == "Event":
                self._reply(202, b"", request_id=inv.request_id)
                return
            if not inv.started.wait(PICKUP_TIMEOUT_S) and runtime.abandon(inv):
                self._error(500, "ServiceException", "the function's runtime did not take the invocation")
                return
            inv.done.wait()
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if inv.function_error:
                headers["X-Amz-Function-Error"] = inv.function_error
            if (self.headers.get("X-Amz-Log-Type") or "").lower() == "tail":
                headers["X-Amz-Log-Result"] = inv.log_tail()
            self._reply(200, inv.result, headers, request_id=inv.request_id)

    return InvokeAPIHandler


def _decode_client_context(value: str | None) -> str | None:
    # boto3 sends it base64-encoded; the Runtime API hands it to the runtime as plain JSON.
    if not value:
        return None
    try:
        return base64.b64decode(value).decode("utf-8")
    except ValueError:
        return None
