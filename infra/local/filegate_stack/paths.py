"""Where the stack keeps its state: one ignored folder, FILEGATE_HOME (default <repo>/.filegate)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The folder holding pyproject.toml, found from this package's own location (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(f"no pyproject.toml above {here}")


def default_home() -> Path:
    env = os.environ.get("FILEGATE_HOME")
    return Path(env).resolve() if env else repo_root() / ".filegate"


@dataclass(frozen=True)
class StackPaths:
    home: Path

    @property
    def stack(self) -> Path:
        return self.home / "stack"

    @property
    def pids(self) -> Path:
        return self.stack / "pids"

    @property
    def logs(self) -> Path:
        return self.stack / "logs"

    @property
    def tls(self) -> Path:
        return self.stack / "tls"

    @property
    def stub_api(self) -> Path:
        return self.stack / "stub_api"

    @property
    def lineage(self) -> Path:
        return self.stack / "lineage"

    @property
    def lambda_dir(self) -> Path:
        return self.stack / "lambda"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def ftp_root(self) -> Path:
        return self.home / "ftp"

    @property
    def sftp_root(self) -> Path:
        return self.home / "sftp"

    @property
    def ssh(self) -> Path:
        return self.stack / "ssh"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def stack_env(self) -> Path:
        return self.home / "stack.env"

    @property
    def stack_json(self) -> Path:
        return self.home / "stack.json"

    def pid_file(self, process: str) -> Path:
        return self.pids / f"{process}.pid"

    def log_file(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    def ensure(self) -> None:
        for folder in (self.pids, self.logs, self.ftp_root, self.sftp_root, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
