"""Runs `filegate` command lines in forked children of one interpreter that has already imported the CLI.

A fresh `filegate` process spends about 3 s importing pandas and pyarrow on these 2-core machines; the hostile
corpus runs well over a hundred command lines, so each one is a fork of this warmed-up process instead: the child runs
`filegate.cli.main(argv)` exactly as the console script does (its own stdout/stderr files, its own exit code,
interpreter shutdown included, so "Exception ignored" messages at exit still show), and the parent measures its
wall time and peak RSS with os.wait4 and kills it (its whole process group) past its time limit or past a hard
memory cap that protects the machine.

Protocol: one JSON request per line on stdin ({"argv", "stdout", "stderr", "env", "cwd", "timeout"}), one JSON
reply per line on stdout ({"code", "seconds", "maxrss_kb", "timed_out", "killed_rss"}).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import filegate.cli

POLL_S = 0.005
HARD_RSS_KB = int(os.environ.get("FILEGATE_HOSTILE_KILL_RSS_MB", "3072")) * 1024


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _child(request: dict) -> None:
    """Never returns: becomes the CLI process."""
    os.setpgid(0, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.update(request.get("env") or {})
    if request.get("cwd"):
        os.chdir(request["cwd"])
    sys.argv = ["filegate", *request["argv"]]
    try:
        code = filegate.cli.main(request["argv"])
    except SystemExit:
        raise
    except BaseException:  # what the interpreter would do with an exception escaping the console script
        traceback.print_exc()
        code = 1
    raise SystemExit(code)


def _run(request: dict) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        # SystemExit unwinds out of main(): the child ends as the console script would, interpreter shutdown
        # (thread joins, finalizers, their "Exception ignored" messages) included.
        _child(request)
    deadline = started + float(request["timeout"])
    timed_out = killed_rss = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if not (timed_out or killed_rss):
            if now > deadline:
                timed_out = True
            elif _rss_kb(pid) > HARD_RSS_KB:
                killed_rss = True
            if timed_out or killed_rss:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        time.sleep(POLL_S)
    return {"code": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - started,
            "maxrss_kb": usage.ru_maxrss, "timed_out": timed_out, "killed_rss": killed_rss}


def _warm_up() -> None:
    """Imports what the CLI imports while it runs (pandas, pyarrow, pydantic, asyncio… about 3 s here) by profiling
    two small files once, then freezes the heap (gc.freeze) so that the children neither copy nor collect it: each
    case then costs its own work, not the imports. No Python thread may be left running when forking."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="filegate-zygote-") as tmp, open(os.devnull, "w") as null:
        for name, data in (("warm.csv", "id,v\n1,a\n2,NA\n"), ("warm.ndjson", '{"id": 1}\n')):
            path = Path(tmp) / name
            path.write_text(data)
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = null
            try:
                filegate.cli.main(["profile", str(path)])
            finally:
                sys.stdout, sys.stderr = stdout, stderr
    assert threading.active_count() == 1, threading.enumerate()
    gc.collect()
    gc.freeze()


def main() -> None:
    _warm_up()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = _run(json.loads(line))
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
