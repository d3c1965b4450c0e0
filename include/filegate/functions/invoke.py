"""The client side of Filegate's Lambda functions: building a checked event, invoking, reading the answer.

No Airflow here: the DAG passes an `Invoker` built on LambdaHook (filegate.orchestration.lambda_invoker),
tests and benchmarks one built on boto3 (`boto3_invoker`). Every payload is checked against its function's
schema (functions/schemas/) before it is sent; payloads carry S3 references and the contract, never file bodies.
Which file goes to which function is decided elsewhere (filegate.pipeline.heavy)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from filegate.functions.catalog import function_timeout
from filegate.functions.events import validate_event

log = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES = 256 * 1024  # far below Lambda's 6 MB: a payload this big would mean a body slipped in
TAIL_IN_ERROR = 1500


class LambdaInvocationError(RuntimeError):
    """The function failed (handler exception, timeout, crash); carries its error and the tail of its log."""

    def __init__(self, function: str, error_type: str, message: str, log_tail: str, request_id: str | None) -> None:
        self.function, self.error_type, self.error_message = function, error_type, message
        self.log_tail, self.request_id = log_tail, request_id
        tail = log_tail.strip()[-TAIL_IN_ERROR:]
        super().__init__(f"Lambda {function} failed ({error_type}): {message}"
                         + (f" | request {request_id}" if request_id else "")
                         + (f" | log tail: {tail}" if tail else ""))


@dataclass(frozen=True)
class InvokeResult:
    function: str
    payload: dict[str, Any]
    request_id: str | None
    log_tail: str
    seconds: float


Invoker = Callable[[str, dict[str, Any]], InvokeResult]


def botocore_config(function: str) -> dict[str, Any]:
    """Client settings for invoking `function`: the read timeout outlasts the function's own timeout (botocore's
    60 s default would cut long runs), keepalive keeps idle NAT paths open, and client retries are off: a
    retried read timeout would start the work twice. Airflow's task retries do the retrying."""
    return {"read_timeout": function_timeout(function) + 60, "connect_timeout": 10, "tcp_keepalive": True,
            "retries": {"max_attempts": 0, "mode": "standard"}}


def parse_invoke_response(function: str, response: dict[str, Any], *, started: float) -> InvokeResult:
    """Turns a Lambda Invoke response into a result, or raises with the function's error and log tail; the
    tail is logged line by line so that it shows in the caller's (the Airflow task's) log."""
    tail = ""
    if response.get("LogResult"):
        tail = base64.b64decode(response["LogResult"]).decode("utf-8", "replace")
    request_id = (response.get("ResponseMetadata") or {}).get("RequestId")
    for line in tail.splitlines():
        if line.strip():
            log.info("[%s] %s", function, line)
    raw = response["Payload"].read() if response.get("Payload") is not None else b""
    try:
        payload = json.loads(raw or b"null")
    except json.JSONDecodeError:
        payload = {"errorMessage": raw[:2000].decode("utf-8", "replace"), "errorType": "InvalidResponse"}
    if response.get("FunctionError"):
        body = payload if isinstance(payload, dict) else {}
        raise LambdaInvocationError(function, str(body.get("errorType", response["FunctionError"])),
                                    str(body.get("errorMessage", raw[:500])), tail, request_id)
    if not isinstance(payload, dict):
        raise LambdaInvocationError(function, "InvalidResponse", f"expected a JSON object, got {raw[:200]!r}",
                                    tail, request_id)
    return InvokeResult(function, payload, request_id, tail, time.monotonic() - started)


def invoke_with_client(client: Any, function: str, payload: dict[str, Any]) -> InvokeResult:
    started = time.monotonic()
    response = client.invoke(FunctionName=function, InvocationType="RequestResponse", LogType="Tail",
                             Payload=json.dumps(payload).encode())
    return parse_invoke_response(function, response, started=started)


def boto3_invoker(**client_kwargs: Any) -> Invoker:
    """An invoker on plain boto3 (CLI, tests, benchmarks); AWS_ENDPOINT_URL_LAMBDA points it at the local stack."""
    import boto3
    from botocore.config import Config

    clients: dict[str, Any] = {}

    def invoke(function: str, payload: dict[str, Any]) -> InvokeResult:
        if function not in clients:
            clients[function] = boto3.client("lambda", config=Config(**botocore_config(function)), **client_kwargs)
        return invoke_with_client(clients[function], function, payload)

    return invoke


def build_payload(event: str, **fields: Any) -> dict[str, Any]:
    """The event for a handler, checked against functions/schemas/<event>.schema.json before it goes anywhere."""
    payload = {k: v for k, v in fields.items() if v is not None}
    validate_event(event, payload)
    size = len(json.dumps(payload))
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the {event} event is {size} bytes; events carry S3 references, never file bodies")
    return payload
