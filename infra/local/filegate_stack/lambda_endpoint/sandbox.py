"""One warm sandbox per function: the awslambdaric process, its output (attributed to the invocation that
wrote it), and the FIFO of invocations it serves one at a time, with AWS's timeout and crash behaviour."""

from __future__ import annotations

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
from http.server import ThreadingHTTPServer

import psutil

from filegate_stack.lambda_endpoint.functions import REGION, EndpointConfig, FunctionSpec
from filegate_stack.lambda_endpoint.runtime_api import runtime_api_handler

logger = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4096
_stdout_lock = threading.Lock()


def emit(line: str) -> None:
    """Write one line to the component log (our stdout), whole, even from many threads."""
    with _stdout_lock:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()


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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), runtime_api_handler(self))
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
