"""Runs native-code work (Arrow, Parquet) in a short-lived child interpreter, bounded in time and memory.

Why: the Filegate web app runs inside the Airflow api-server process. A segmentation fault in a native library
there (seen once in libarrow while reading Parquet for a request) kills the api-server and the whole Airflow UI
with it. In a child, the same fault is one failed request: the parent answers with a reason and keeps serving.

The protocol: the parent runs `python -m <module>` with a JSON request on stdin; the child (`child_main`) caps
its own address space (RLIMIT_AS) and CPU time before importing anything heavy, arms a wall-clock alarm that ends
it even if the parent has gone, runs the handler and prints one JSON object on stdout. Exit code 0: the result;
2: the request was refused (ValueError, message on stdout); 3: out of memory. Anything else, a signal included,
is a crash. At most `max_workers` children run at once per process, so a burst of requests cannot multiply the
memory they may use.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EXIT_REFUSED = 2
EXIT_OUT_OF_MEMORY = 3
EXIT_DEADLINE = 124
MEMORY_ENV = "FILEGATE_ISOLATED_MAX_BYTES"
DEADLINE_ENV = "FILEGATE_ISOLATED_DEADLINE_S"
# What C++ prints when it aborts for want of memory (or of a thread stack) under RLIMIT_AS.
OOM_MARKS = ("std::bad_alloc", "Resource temporarily unavailable", "Cannot allocate memory")
# The library's root, so the child imports the same `filegate` as the parent whatever sys.path the host set up
# (MWAA's api-server puts only plugins/ and config/ on it).
LIBRARY_ROOT = str(Path(__file__).resolve().parents[2])
# Arrow's default allocator (mimalloc/jemalloc) reserves about 1.3 GB of address space up front: with the system
# allocator, RLIMIT_AS measures what the child really uses. One malloc arena per thread would do the same.
CHILD_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}


class IsolatedError(Exception):
    """The child did not produce a result."""


class WorkerCrashed(IsolatedError):
    pass


class WorkerTimedOut(IsolatedError):
    pass


class WorkerOutOfMemory(IsolatedError):
    pass


class WorkerBusy(IsolatedError):
    """Every slot was taken for longer than the caller would wait."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class IsolatedRunner:
    """Runs `python -m <module>` per call, at most `max_workers` at a time."""

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)

    def run(self, module: str, request: Mapping[str, Any], *, timeout_s: float, max_bytes: int,
            command: list[str] | None = None, wait_s: float | None = None) -> Any:
        """The child's result; ValueError when it refused the request; an IsolatedError subclass otherwise."""
        if not self._slots.acquire(timeout=timeout_s if wait_s is None else wait_s):
            raise WorkerBusy(f"{self.max_workers} readers are busy; try again in a few seconds")
        try:
            return self._run(module, request, timeout_s=timeout_s, max_bytes=max_bytes, command=command)
        finally:
            self._slots.release()

    def _run(self, module: str, request: Mapping[str, Any], *, timeout_s: float, max_bytes: int,
             command: list[str] | None) -> Any:
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, **CHILD_ENV, MEMORY_ENV: str(max_bytes), DEADLINE_ENV: str(timeout_s),
               "PYTHONPATH": os.pathsep.join([LIBRARY_ROOT, path] if path else [LIBRARY_ROOT])}
        started = time.monotonic()
        try:
            done = subprocess.run(command or [sys.executable, "-m", module], input=json.dumps(request).encode(),
                                  capture_output=True, env=env, timeout=timeout_s, check=False,
                                  start_new_session=True)  # a Ctrl-C meant for the api-server is not the child's
        except subprocess.TimeoutExpired as exc:  # run() has killed and reaped it
            raise WorkerTimedOut(f"the reader took longer than {timeout_s:g} s and was stopped") from exc
        elapsed = time.monotonic() - started
        code = done.returncode
        if code in (0, EXIT_REFUSED, EXIT_OUT_OF_MEMORY):
            try:
                answer = json.loads(done.stdout)
            except ValueError:
                answer = None
            if code == 0 and isinstance(answer, dict) and "result" in answer:
                log.debug("%s answered in %.2f s", module, elapsed)
                return answer["result"]
            message = answer.get("error") if isinstance(answer, dict) else None
            if code == EXIT_REFUSED and message:
                raise ValueError(message)
            if code == EXIT_OUT_OF_MEMORY:
                raise WorkerOutOfMemory(f"the reader needed more than the {max_bytes >> 20} MB of memory it may "
                                        f"use{': ' + message if message else ''}")
        stderr = done.stderr.decode(errors="replace")[-2000:]
        log.error("%s failed (exit %s) after %.2f s; stderr tail: %s", module, code, elapsed, stderr)
        if code == EXIT_DEADLINE:
            raise WorkerTimedOut(f"the reader took longer than {timeout_s:g} s and stopped itself")
        if code < 0:
            if -code == signal.SIGABRT and any(m in stderr for m in OOM_MARKS):
                # C++ code that cannot get memory (or a thread stack) under RLIMIT_AS aborts
                raise WorkerOutOfMemory(f"the reader needed more than the {max_bytes >> 20} MB of memory it may "
                                        f"use (it aborted)")
            if -code == signal.SIGXCPU:
                raise WorkerTimedOut(f"the reader used more than its {timeout_s:g} s of CPU and was stopped")
            raise WorkerCrashed(f"the reader crashed ({_signal_name(-code)}); nothing else was affected")
        raise WorkerCrashed(f"the reader failed (exit code {code})")


# -- in the child -----------------------------------------------------------------------------------------------


def _limit_self() -> None:
    import resource

    max_bytes = int(os.environ.get(MEMORY_ENV) or 0)
    if max_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    deadline = float(os.environ.get(DEADLINE_ENV) or 0)
    if deadline > 0:
        cpu = math.ceil(deadline) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        # Wall clock too, without the parent: an orphaned child must not outlive its request for long.
        timer = threading.Timer(deadline + 1, os._exit, args=(EXIT_DEADLINE,))
        timer.daemon = True
        timer.start()


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):  # pyarrow's ArrowMemoryError is one
        return True
    text = str(exc).lower()
    return isinstance(exc, ImportError | OSError) and ("cannot allocate memory" in text or "failed to map" in text)


def _reply(payload: dict[str, Any], code: int) -> None:
    sys.stdout.write(json.dumps(payload, default=str))
    sys.stdout.flush()
    os._exit(code)  # no interpreter teardown: nothing native runs after the answer is out


def child_main(handler: Callable[[dict[str, Any]], Any]) -> None:
    """The child's entry point: limits first, then the request from stdin, then one JSON answer on stdout."""
    _limit_self()
    try:
        result = handler(json.loads(sys.stdin.buffer.read()))
    except ValueError as exc:
        _reply({"error": str(exc)}, EXIT_REFUSED)
    except BaseException as exc:
        if _out_of_memory(exc):
            _reply({"error": f"{type(exc).__name__}: {exc}"[:500]}, EXIT_OUT_OF_MEMORY)
        raise  # a traceback on stderr and exit code 1: the parent logs it and answers "failed"
    try:
        answer = json.dumps({"result": result}, default=str)
    except MemoryError as exc:
        _reply({"error": f"MemoryError: {exc}"[:500]}, EXIT_OUT_OF_MEMORY)
    sys.stdout.write(answer)
    sys.stdout.flush()
    os._exit(0)
