"""A local AWS Lambda: the Invoke API in front, AWS's own runtime client (awslambdaric) behind.

boto3 / Airflow's LambdaHook call `POST /2015-03-31/functions/{name}/invocations` here. Each function gets
one `python -m awslambdaric <handler>` process and its own Runtime API listener (one port per function
routes runtime calls without guessing), so invocations of one function are serialized like a single warm
sandbox. Timeouts kill and restart the runtime and answer like AWS (Sandbox.Timedout).

Run: python -m filegate_stack.lambda_endpoint --port 9150 --config functions.json
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import fcntl
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
LOG_TAIL_BYTES = 4096
# How long an invocation may wait for a runtime to pick it up before we give up on the runtime.
PICKUP_TIMEOUT_S = 300.0
_stdout_lock = threading.Lock()


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def emit(line: str) -> None:
    """Write one line to the component log (our stdout), whole, even from many threads."""
    with _stdout_lock:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: float = 900.0
    memory: int = 128
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> FunctionSpec:
        return cls(
            name=name,
            handler=str(data["handler"]),
            timeout=float(data.get("timeout", 900)),
            memory=int(data.get("memory", 128)),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        )


@dataclass
class EndpointConfig:
    functions: dict[str, FunctionSpec]
    pythonpath: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    task_root: str | None = None

    @classmethod
    def load(cls, path: Path) -> EndpointConfig:
        data = json.loads(path.read_text())
        return cls(
            functions={n: FunctionSpec.from_json(n, d) for n, d in (data.get("functions") or {}).items()},
            pythonpath=[str(p) for p in data.get("pythonpath") or []],
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            task_root=data.get("task_root"),
        )


class Invocation:
    def __init__(self, payload: bytes, *, client_context: str | None = None) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.client_context = client_context
        self.started = threading.Event()
        self.done = threading.Event()
        self.started_at = 0.0
        self.result: bytes = b""
        self.function_error: str | None = None
        self.log_lines: list[str] = []
        self.timer: threading.Timer | None = None

    def log_tail(self) -> str:
        text = "\n".join(self.log_lines) + "\n"
        raw = text.encode("utf-8", "replace")[-LOG_TAIL_BYTES:]
        return base64.b64encode(raw).decode("ascii")


class FunctionRuntime:
    """One warm sandbox: a Runtime API listener, an awslambdaric process, a FIFO of invocations."""

    def __init__(self, spec: FunctionSpec, config: EndpointConfig, invoke_url: str) -> None:
        self.spec = spec
        self.config = config
        self.invoke_url = invoke_url
        self.cond = threading.Condition()
        self.pending: collections.deque[Invocation] = collections.deque()
        self.current: Invocation | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.init_error: bytes | None = None
        self.closing = False
        self.orphan_lines: list[str] = []
        self.output_lock = threading.Lock()
        self.partial = b""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _runtime_handler(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, name=f"rapi-{spec.name}", daemon=True).start()

    # ---- process management -------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("AWS_PROFILE", None)
        paths = [*self.config.pythonpath, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
                "_HANDLER": self.spec.handler,
                "LAMBDA_TASK_ROOT": self.config.task_root or os.getcwd(),
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL_LAMBDA": self.invoke_url,
                "PYTHONPATH": os.pathsep.join(paths),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.config.env)
        env.update(self.spec.env)
        return env

    def _spawn_locked(self) -> None:
        self.generation += 1
        self.init_error = None
        proc = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", self.spec.handler],
            env=self._env(),
            cwd=self.config.task_root or None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Deliberately in the endpoint's process group: `filegate-stack stop` signals the group, so
            # runtimes die with the endpoint even if it is SIGKILLed.
        )
        self.proc = proc
        emit(f"[{self.spec.name}] runtime started (pid {proc.pid}, generation {self.generation})")
        generation = self.generation
        threading.Thread(target=self._pump_output, args=(proc,), daemon=True).start()
        threading.Thread(target=self._watch_exit, args=(proc, generation), daemon=True).start()

    def _kill_locked(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # The handler may have started children of its own; a timed-out sandbox loses them all.
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        threading.Thread(target=proc.wait, daemon=True).start()

    def _watch_exit(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        code = proc.wait()
        with self.cond:
            if generation != self.generation or self.closing:
                return  # we killed it on purpose (timeout/shutdown); already handled
            if code in (-signal.SIGTERM, -signal.SIGINT):
                # The whole group is being stopped: do not respawn into a dying endpoint.
                self.closing = True
                self.proc = None
                return
            self.proc = None
            emit(f"[{self.spec.name}] runtime exited with status {code}")
            self._drain_output(proc)
            if self.current is not None:
                body = json.dumps(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {self.current.request_id} Error: "
                        f"Runtime exited with error: exit status {code}",
                    }
                ).encode()
                self._finish_locked(self.current, body, "Unhandled")
            elif self.init_error is not None and self.pending:
                # AWS fails the invocation that triggered the failed cold start with the init error.
                self._finish_locked(self.pending.popleft(), self.init_error, "Unhandled")
            if self.pending:
                self._spawn_locked()
            self.cond.notify_all()

    # ---- output capture ----------------------------------------------------------------------
    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            try:
                readable, _, _ = select.select([fd], [], [], 1.0)
            except (OSError, ValueError):
                readable = [fd]
            if not readable:
                if proc.poll() is not None and not self._pipe_has_data(fd):
                    with self.output_lock:
                        self._consume(b"", final=True)
                    return
                continue
            with self.output_lock:
                try:
                    chunk = os.read(fd, 65536)
                except (OSError, ValueError):
                    chunk = b""
                if not chunk:  # EOF: every writer (the runtime and its children) is gone
                    self._consume(b"", final=True)
                    return
                self._consume(chunk)

    def _consume(self, chunk: bytes, final: bool = False) -> None:
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = b"" if final else lines.pop()
        for raw in lines:
            if not raw and final:
                continue
            line = raw.decode("utf-8", "replace").rstrip("\r")
            emit(f"[{self.spec.name}] {line}")
            target = self.current
            if target is not None:
                target.log_lines.append(line)
            else:
                self.orphan_lines.append(line)

    @staticmethod
    def _pipe_has_data(fd: int) -> bool:
        try:
            buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
            return bool(struct.unpack("i", buf)[0])
        except (OSError, ValueError):
            return False

    def _drain_output(self, proc: subprocess.Popen[bytes] | None) -> None:
        """Attribute everything the runtime wrote before this point to the current invocation.

        The runtime writes unbuffered before it posts its result, so those bytes are in the pipe (or
        already consumed) by now; FIONREAD tells us when the pump thread has taken them all.
        """
        if proc is None or proc.stdout is None:
            return
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.output_lock:
                if not self._pipe_has_data(proc.stdout.fileno()):
                    if self.partial:
                        self._consume(b"\n")
                    return
            time.sleep(0.002)

    # ---- invocation flow -----------------------------------------------------------------------
    def submit(self, inv: Invocation) -> None:
        with self.cond:
            if self.closing:
                raise RuntimeError("endpoint is shutting down")
            self.pending.append(inv)
            if self.proc is None:
                self._spawn_locked()
            self.cond.notify_all()

    def next_invocation(self, deadline_wait: float = 1.0) -> Invocation | None:
        """Called by a runtime's GET .../invocation/next; blocks until work arrives."""
        with self.cond:
            generation = self.generation
            while True:
                if self.closing or generation != self.generation or self.proc is None:
                    return None  # the asking process is gone or replaced; leave work for its successor
                if self.pending and self.current is None:
                    inv = self.pending.popleft()
                    self.current = inv
                    inv.log_lines = [*self.orphan_lines, *inv.log_lines]
                    self.orphan_lines = []
                    inv.started_at = time.monotonic()
                    inv.started.set()
                    start = f"START RequestId: {inv.request_id} Version: $LATEST"
                    emit(f"[{self.spec.name}] {start}")
                    inv.log_lines.insert(0, start)
                    inv.timer = threading.Timer(self.spec.timeout, self._on_timeout, args=(inv,))
                    inv.timer.daemon = True
                    inv.timer.start()
                    return inv
                self.cond.wait(deadline_wait)

    def complete(self, request_id: str, body: bytes, function_error: str | None) -> bool:
        self._drain_output(self.proc)
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                logger.warning("%s: result for unknown request %s ignored", self.spec.name, request_id)
                return False
            self._finish_locked(inv, body, function_error)
            self.cond.notify_all()
            return True

    def init_failed(self, body: bytes) -> None:
        with self.cond:
            self.init_error = body
        emit(f"[{self.spec.name}] init error: {body.decode('utf-8', 'replace')}")

    def _on_timeout(self, inv: Invocation) -> None:
        with self.cond:
            if inv.done.is_set() or self.current is not inv:
                return
            proc = self.proc
            self._drain_output(proc)
            self.generation += 1  # the exit watcher must not treat this kill as a crash
            self._kill_locked()
            elapsed = time.monotonic() - inv.started_at
            message = f"RequestId: {inv.request_id} Error: Task timed out after {elapsed:.2f} seconds"
            emit(f"[{self.spec.name}] {message}")
            inv.log_lines.append(message)
            body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode()
            self._finish_locked(inv, body, "Unhandled")
            # Restart right away, like AWS re-initialising the sandbox, so the next call is warm.
            self._spawn_locked()
            self.cond.notify_all()

    def _finish_locked(self, inv: Invocation, body: bytes, function_error: str | None) -> None:
        if inv.timer is not None:
            inv.timer.cancel()
        duration_ms = (time.monotonic() - inv.started_at) * 1000 if inv.started_at else 0.0
        end = f"END RequestId: {inv.request_id}"
        report = (
            f"REPORT RequestId: {inv.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.spec.memory} MB"
        )
        inv.log_lines.extend([end, report])
        emit(f"[{self.spec.name}] {end}")
        emit(f"[{self.spec.name}] {report}")
        inv.result = body
        inv.function_error = function_error
        if self.current is inv:
            self.current = None
        with contextlib.suppress(ValueError):
            self.pending.remove(inv)
        inv.done.set()

    def abandon(self, inv: Invocation) -> bool:
        """Drop an invocation no runtime picked up (the runtime cannot start)."""
        with self.cond:
            if inv.started.is_set():
                return False
            with contextlib.suppress(ValueError):
                self.pending.remove(inv)
            return True

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.generation += 1
            self._kill_locked()
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


def _runtime_handler(runtime: FunctionRuntime) -> type[BaseHTTPRequestHandler]:
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


class LambdaEndpoint:
    """The Invoke API server plus one FunctionRuntime per registered function (started lazily)."""

    def __init__(self, config: EndpointConfig, port: int) -> None:
        self.config = config
        # FILEGATE_BIND_HOST=0.0.0.0 only inside a container (docker-compose.yaml); loopback everywhere else.
        bind_host = os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1")
        self.server = ThreadingHTTPServer((bind_host, port), _invoke_handler(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.invoke_url = f"http://127.0.0.1:{self.port}"
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.lock = threading.Lock()

    def runtime(self, name: str) -> FunctionRuntime | None:
        spec = self.config.functions.get(name)
        if spec is None:
            return None
        with self.lock:
            if name not in self.runtimes:
                self.runtimes[name] = FunctionRuntime(spec, self.config, self.invoke_url)
            return self.runtimes[name]

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        with self.lock:
            runtimes = list(self.runtimes.values())
        for runtime in runtimes:
            runtime.close()
        self.server.server_close()


def _function_name(raw: str) -> str:
    # Accept a name, name:qualifier, or a full/partial ARN (arn:aws:lambda:region:acct:function:name[:q]).
    if raw.startswith("arn:"):
        parts = raw.split(":")
        return parts[6] if len(parts) > 6 else raw
    return raw.split(":", 1)[0]


def _invoke_handler(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class InvokeAPIHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("invoke api: %s", format % args)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
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
                self._reply(202, b"", {"X-Amzn-RequestId": inv.request_id})
                return
            if not inv.started.wait(PICKUP_TIMEOUT_S) and runtime.abandon(inv):
                self._error(500, "ServiceException", "the function's runtime did not take the invocation")
                return
            inv.done.wait()
            headers = {"X-Amz-Executed-Version": "$LATEST", "X-Amzn-RequestId": inv.request_id}
            if inv.function_error:
                headers["X-Amz-Function-Error"] = inv.function_error
            if (self.headers.get("X-Amz-Log-Type") or "").lower() == "tail":
                headers["X-Amz-Log-Result"] = inv.log_tail()
            self._reply(200, inv.result, headers)

    return InvokeAPIHandler


def _decode_client_context(value: str | None) -> str | None:
    # boto3 sends it base64-encoded; the Runtime API hands it to the runtime as plain JSON.
    if not value:
        return None
    try:
        return base64.b64decode(value).decode("utf-8")
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local AWS Lambda Invoke + Runtime API endpoint")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON: functions, pythonpath, env, task_root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint = LambdaEndpoint(EndpointConfig.load(args.config), args.port)

    def shutdown(signum: int, _frame: Any) -> None:
        logger.info("signal %s: stopping runtimes and endpoint", signum)
        threading.Thread(target=endpoint.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    logger.info(
        "lambda endpoint on http://127.0.0.1:%s, functions: %s",
        endpoint.port,
        ", ".join(sorted(endpoint.config.functions)),
    )
    try:
        endpoint.serve_forever()
    finally:
        endpoint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
