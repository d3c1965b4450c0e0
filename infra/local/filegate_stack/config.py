"""Ports and settings of one stack, from environment variables or chosen free for tests."""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _parse_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if last < first:
        raise ValueError(f"bad port range {text!r}")
    return first, last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _range_is_free(first: int, last: int) -> bool:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port_range(size: int) -> tuple[int, int]:
    # Passive FTP needs a contiguous range; ephemeral port 0 cannot give one, so probe randomly.
    for _ in range(200):
        first = random.randint(20000, 32000)
        if _range_is_free(first, first + size - 1):
            return first, first + size - 1
    raise RuntimeError("no free port range found")


@dataclass(frozen=True)
class Ports:
    moto: int = 5150
    lambda_: int = 9150
    ftp: int = 2121
    ftp_passive: tuple[int, int] = (30000, 30049)
    sftp: int = 2222
    stub_api: int = 8150
    lineage: int = 8160
    airflow: int = 8080

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            moto=_env_int("FILEGATE_MOTO_PORT", 5150),
            lambda_=_env_int("FILEGATE_LAMBDA_PORT", 9150),
            ftp=_env_int("FILEGATE_FTP_PORT", 2121),
            ftp_passive=_parse_range(os.environ.get("FILEGATE_FTP_PASSIVE_PORTS") or "30000-30049"),
            sftp=_env_int("FILEGATE_SFTP_PORT", 2222),
            stub_api=_env_int("FILEGATE_STUB_API_PORT", 8150),
            lineage=_env_int("FILEGATE_LINEAGE_PORT", 8160),
            airflow=_env_int("FILEGATE_AIRFLOW_PORT", 8080),
        )

    @classmethod
    def free(cls) -> Ports:
        """Ephemeral ports, for tests that must not collide with a developer's running stack."""
        return cls(
            moto=free_port(),
            lambda_=free_port(),
            ftp=free_port(),
            ftp_passive=free_port_range(10),
            sftp=free_port(),
            stub_api=free_port(),
            lineage=free_port(),
            airflow=free_port(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "moto": self.moto,
            "lambda": self.lambda_,
            "ftp": self.ftp,
            "ftp_passive": f"{self.ftp_passive[0]}-{self.ftp_passive[1]}",
            "sftp": self.sftp,
            "stub_api": self.stub_api,
            "lineage": self.lineage,
            "airflow": self.airflow,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ports:
        return cls(
            moto=int(data["moto"]),
            lambda_=int(data["lambda"]),
            ftp=int(data["ftp"]),
            ftp_passive=_parse_range(str(data["ftp_passive"])),
            sftp=int(data.get("sftp", cls.sftp)),  # stack.json written before the SFTP server existed
            stub_api=int(data["stub_api"]),
            lineage=int(data.get("lineage", cls.lineage)),  # stack.json from before the receiver
            airflow=int(data["airflow"]),
        )


def _default_feeds() -> list[str]:
    raw = os.environ.get("FILEGATE_FEEDS", "")
    return [feed.strip() for feed in raw.split(",") if feed.strip()]


@dataclass(frozen=True)
class StackConfig:
    """Settings that are not ports. Defaults come from the environment at construction time."""

    bucket: str = field(default_factory=lambda: os.environ.get("FILEGATE_BUCKET", "filegate-local"))
    ftp_user: str = "filegate"
    ftp_password: str = field(default_factory=lambda: os.environ.get("FILEGATE_FTP_PASSWORD", "filegate"))
    # off | optional (AUTH TLS offered: one server for FTP and FTPS) | required (FTPS only)
    ftp_tls: str = field(default_factory=lambda: os.environ.get("FILEGATE_FTP_TLS") or "optional")
    sftp_user: str = "filegate"
    sftp_password: str = field(default_factory=lambda: os.environ.get("FILEGATE_SFTP_PASSWORD", "filegate"))
    # Airflow's OpenLineage provider sends to the stack's receiver (off: the provider stays disabled).
    openlineage: bool = True
    airflow_user: str = "admin"
    airflow_password: str = field(default_factory=lambda: os.environ.get("FILEGATE_AIRFLOW_PASSWORD", "admin"))
    stub_api_token: str | None = field(default_factory=lambda: os.environ.get("FILEGATE_STUB_API_TOKEN") or None)
    db_url: str | None = field(default_factory=lambda: os.environ.get("FILEGATE_DB_URL") or None)
    airflow_db_url: str | None = field(default_factory=lambda: os.environ.get("FILEGATE_AIRFLOW_DB_URL") or None)
    # S3 (only S3) through another endpoint in front of moto, e.g. the chaos run's fault-injecting proxy.
    s3_endpoint_url: str | None = field(default_factory=lambda: os.environ.get("FILEGATE_S3_ENDPOINT_URL") or None)
    dags_folder: Path | None = field(
        default_factory=lambda: Path(p) if (p := os.environ.get("FILEGATE_DAGS_FOLDER")) else None
    )
    # Feeds when the contracts library cannot be imported; None means "ask filegate.contracts".
    feeds: list[str] | None = field(default_factory=lambda: _default_feeds() or None)
    # Extra Lambda functions (name -> {"handler", "timeout", "memory", "env"}), e.g. test fixtures.
    extra_functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_pythonpath: list[str] = field(default_factory=list)
    startup_timeout: float = 120.0
