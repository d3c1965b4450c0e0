"""What every stack component shares: its processes (pid files), start, readiness, stop."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filegate_stack.config import Ports, StackConfig
from filegate_stack.paths import StackPaths, repo_root
from filegate_stack.procs import PidRecord, read_pid, spawn, stop_group, write_pid

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@dataclass
class StackContext:
    paths: StackPaths
    ports: Ports
    config: StackConfig
    # Facts learned while starting (postgres socket dir, queue URLs, ...), persisted in stack.json.
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return repo_root()

    def base_env(self) -> dict[str, str]:
        """The caller's environment, with the package importable in children whatever their cwd."""
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["FILEGATE_HOME"] = str(self.paths.home)
        return env

    def python(self) -> str:
        return sys.executable


class Component:
    """One service of the stack. Subclasses set name/processes and implement start()."""

    name: str = ""
    # Pid file names, in start order; stop goes in reverse.
    processes: tuple[str, ...] = ()

    def start(self, ctx: StackContext) -> None:
        raise NotImplementedError

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {}

    def records(self, ctx: StackContext) -> dict[str, PidRecord | None]:
        return {proc: read_pid(ctx.paths.pid_file(proc)) for proc in self.processes}

    def running(self, ctx: StackContext) -> bool:
        recs = self.records(ctx).values()
        return all(rec is not None and rec.alive() for rec in recs)

    def partly_running(self, ctx: StackContext) -> bool:
        return any(rec is not None and rec.alive() for rec in self.records(ctx).values())

    def launch(self, ctx: StackContext, process: str, argv: list[str], env: dict[str, str]) -> PidRecord:
        pid = spawn(argv, env=env, log_path=ctx.paths.log_file(process), cwd=ctx.paths.home)
        return write_pid(ctx.paths.pid_file(process), pid)

    def stop(self, ctx: StackContext) -> list[int]:
        leftovers: list[int] = []
        for process in reversed(self.processes):
            path = ctx.paths.pid_file(process)
            record = read_pid(path)
            if record is not None:
                left = stop_group(record)
                if left:
                    logger.error("%s: processes left behind: %s", process, left)
                leftovers.extend(left)
            path.unlink(missing_ok=True)
        return leftovers

    def pids(self, ctx: StackContext) -> dict[str, int | None]:
        return {proc: (rec.pid if rec is not None and rec.alive() else None) for proc, rec in self.records(ctx).items()}


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
