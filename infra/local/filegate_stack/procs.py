"""Process bookkeeping: spawn detached components, pid files, stopping whole process groups, readiness."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)


def venv_bin(name: str) -> str:
    """A console script next to the running interpreter (the project's venv)."""
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class PidRecord:
    pid: int
    create_time: float

    def process(self) -> psutil.Process | None:
        """The live process, or None if it is gone or the pid was reused by something else."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None


def write_pid(path: Path, pid: int) -> PidRecord:
    # The create time guards against signalling an unrelated process that reused the pid.
    record = PidRecord(pid, psutil.Process(pid).create_time())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{record.pid}\n{record.create_time}\n")
    return record


def read_pid(path: Path) -> PidRecord | None:
    try:
        lines = path.read_text().split()
        return PidRecord(int(lines[0]), float(lines[1]))
    except (OSError, ValueError, IndexError):
        return None


def spawn(argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> int:
    """Start a component in its own session so it outlives us and can be stopped as one group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logger.debug("spawned %s as pid %s", argv[0], proc.pid)
    return proc.pid


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied, PermissionError):
            continue
    return members


def _reap(pid: int) -> None:
    # If we are the parent (same-process start then stop), collect the zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_group(record: PidRecord, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> list[int]:
    """Signal the process group led by record.pid, wait, then SIGKILL. Returns pids still alive."""
    proc = record.process()
    if proc is None:
        return []
    pgid = record.pid
    try:
        pgid = os.getpgid(record.pid)
    except ProcessLookupError:
        return []
    if pgid != record.pid:
        # Not a group leader (e.g. the postmaster, started by a helper): signal the process alone.
        return stop_process(record, sig=sig, timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not group_members(pgid):
            return []
        time.sleep(0.1)
    logger.warning("process group %s did not exit after %s; sending SIGKILL", pgid, sig)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.5)
    _reap(record.pid)
    return [p.pid for p in group_members(pgid)]


def stop_process(record: PidRecord, *, sig: int, timeout: float) -> list[int]:
    proc = record.process()
    if proc is None:
        return []
    children = proc.children(recursive=True)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)
    _, alive = psutil.wait_procs([proc, *children], timeout=timeout)
    if alive:
        logger.warning("pids %s did not exit after signal %s; sending SIGKILL", [p.pid for p in alive], sig)
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        _, alive = psutil.wait_procs(alive, timeout=3)
    return [p.pid for p in alive]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    pid: PidRecord | None = None,
    interval: float = 0.2,
) -> None:
    """Poll until check() holds; fail early if the process we wait for has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not pid.alive():
            raise RuntimeError(f"{what}: process {pid.pid} exited before it was ready")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
