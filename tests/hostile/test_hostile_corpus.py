"""Every file of the hostile corpus (hostile_corpus.py) through the `filegate` CLI in a process of its own.

For every case: exit code 0 or 1 (never 2, the catch-all for internal errors), no traceback and no "Exception
ignored" on stderr, every line on stderr in the CLI's own voice, the reason one line of at most 500 characters
without raw control characters, peak RSS under 1 GB, wall time under the case's limit, and the case's expected
outcome (processed with its facts, or refused with its reason).

The processes are forks of one interpreter that has already imported the CLI (hostile_zygote.py); set
FILEGATE_HOSTILE_SPAWN=exec to start the real `filegate` console script for each case instead (3 s more each).
The outcomes by class, with time and peak RSS, are printed at the end of the run and written to
tests/artifacts/hostile-corpus.json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_corpus import CASES, Case, scale

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RSS_LIMIT_KB = 1_000_000  # 1 GB
MAX_REASON = 500
# What a reason must never hold raw: C0/C1 controls, line separators, bidi overrides and isolates, surrogates.
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
ROWS_LINE = re.compile(r"rows: (\d+) total, (\d+) valid, (\d+) rejected")
RESULTS: list[dict[str, Any]] = []


def _limit(case: Case) -> float:
    return case.limit_s * max(1.0, scale() / 32)


class Zygote:
    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "hostile_zygote.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=cwd)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        assert json.loads(ready) == {"ready": True}, ready

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _exec(request: dict[str, Any]) -> dict[str, Any]:
    """The real console script in a new process; wall time and peak RSS from os.wait4."""
    started = time.monotonic()
    with open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "filegate"), *request["argv"]], stdout=out, stderr=err,
                                env={**os.environ, **request["env"]}, cwd=request["cwd"], start_new_session=True)
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if not timed_out and time.monotonic() - started > request["timeout"]:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"code": proc.returncode, "seconds": time.monotonic() - started, "maxrss_kb": usage.ru_maxrss,
            "timed_out": timed_out, "killed_rss": False}


@pytest.fixture(scope="module")
def spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if os.environ.get("FILEGATE_HOSTILE_SPAWN") == "exec":
        yield _exec
        return
    zygote = Zygote(tmp_path_factory.mktemp("zygote"))
    try:
        yield zygote.run
    finally:
        zygote.close()


def _params() -> list[Any]:
    return [pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=case.pending)]
                         if case.pending else []) for case in CASES]


def _reason_of(case: Case, stdout: str, stderr: str) -> tuple[str | None, dict[str, Any] | None]:
    """The file's reason and (profile) summary, from what the command printed."""
    if case.command == "profile":
        try:
            summary = json.loads(stdout)
        except json.JSONDecodeError:
            summary = None
        if summary is not None:
            return summary.get("reason"), summary
    else:
        found = re.search(r"^  reason: (.*)$", stdout, re.MULTILINE)
        if found:
            return found.group(1), None
    lines = [line for line in stderr.splitlines() if line.startswith("filegate: ")]
    return (lines[-1].split(": ", 2)[-1] if lines else None), None


def _check_reason(reason: str) -> None:
    assert "\n" not in reason and "\r" not in reason, f"reason spans lines: {reason!r}"
    assert len(reason) <= MAX_REASON, f"reason has {len(reason)} characters: {reason[:120]!r}…"
    raw = RAW_CONTROL.search(reason)
    assert raw is None, f"raw control character {raw.group()!r} in the reason: {reason!r}"


def _validate_rows(stdout: str) -> dict[str, int] | None:
    found = ROWS_LINE.search(stdout)
    if not found:
        return None
    total, valid, rejected = map(int, found.groups())
    return {"total": total, "valid": valid, "rejected": rejected}


@pytest.mark.parametrize("case", _params())
def test_case(case: Case, spawn: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    path = case.write(tmp_path)
    made_s = time.monotonic() - started
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (tmp_path / "tmp").mkdir()
    argv = [case.command, str(path)]
    if case.feed is not None:
        (feeds / "hostile.yaml").write_text(yaml.safe_dump({"name": "hostile", "description": f"corpus {case.id}",
                                                            **case.feed}))
        argv += ["--feed", "hostile"]
    elif case.fmt:
        argv += ["--format", case.fmt]
    request = {"argv": argv, "stdout": str(tmp_path / "stdout"), "stderr": str(tmp_path / "stderr"),
               "env": {"FILEGATE_FEEDS_DIR": str(feeds), "FILEGATE_HOME": str(tmp_path / "home"),
                       "TMPDIR": str(tmp_path / "tmp")},
               "cwd": str(tmp_path), "timeout": _limit(case)}
    run = spawn(request)
    stdout = (tmp_path / "stdout").read_text(errors="replace")
    stderr = (tmp_path / "stderr").read_text(errors="replace")
    reason, summary = _reason_of(case, stdout, stderr)
    rows = (summary or {}).get("rows") or _validate_rows(stdout)
    record = {"case": case.id, "class": case.cls, "size": path.stat().st_size, "code": run["code"],
              "seconds": round(run["seconds"], 3), "make_seconds": round(made_s, 3),
              "rss_mb": round(run["maxrss_kb"] / 1024, 1), "timed_out": run["timed_out"],
              "killed_rss": run["killed_rss"], "reason": reason, "rows": rows, "pending": case.pending,
              "outcome": {0: "ok", 1: "refused"}.get(run["code"], "FAILED"), "stderr": stderr[-2000:]}
    RESULTS.append(record)
    path.unlink()  # the big ones should not wait for pytest's temp-dir rotation

    assert not run["timed_out"], f"still running after {_limit(case):.0f} s"
    assert not run["killed_rss"], "killed: peak RSS beyond the hard cap"
    assert run["code"] in (0, 1), f"exit code {run['code']}: {stderr[-1500:]}"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    foreign = [line for line in stderr.splitlines() if line and not line.startswith("filegate: ")]
    assert not foreign, f"stderr lines not from the CLI: {foreign[:5]}"
    assert not RAW_CONTROL.search(stderr.replace("\n", "")), f"raw control character on stderr: {stderr!r}"
    assert run["maxrss_kb"] < RSS_LIMIT_KB, f"peak RSS {run['maxrss_kb'] / 1024:.0f} MB"
    assert run["seconds"] < _limit(case)
    if run["code"] == 1:
        assert reason, f"refused without a reason: {stdout[-500:]} {stderr[-500:]}"
    if reason is not None:
        _check_reason(reason)

    expect = case.expect
    if expect.outcome == "ok":
        assert run["code"] == 0, f"expected the file processed, got: {reason}"
    elif expect.outcome == "refused":
        assert run["code"] == 1, f"expected a refusal matching {expect.reason!r}; processed: {rows}"
    if run["code"] == 1 and expect.reason:
        assert re.search(expect.reason, reason or "", re.IGNORECASE), f"reason {reason!r} !~ {expect.reason!r}"
    if run["code"] == 0:
        assert rows is not None, stdout[-500:]
        if expect.rows is not None:
            assert rows["total"] == expect.rows, rows
        if expect.rejected is not None and expect.outcome == "ok":
            assert rows["rejected"] == expect.rejected, rows
    if expect.check is not None and summary is not None:
        expect.check(summary)
