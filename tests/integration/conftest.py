"""A real local stack (Postgres, moto, Lambda endpoint, FTP, SFTP, stub API, OpenLineage receiver; not Airflow) for
integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from filegate_stack.config import Ports, StackConfig
from filegate_stack.stack import Stack

TEST_FEEDS = ["trains", "events"]
TEST_FUNCTIONS = {
    "fg-echo": {"handler": "fg_test_handlers.echo", "timeout": 30, "memory": 256},
    "fg-boom": {"handler": "fg_test_handlers.boom", "timeout": 30},
    "fg-sleepy": {"handler": "fg_test_handlers.sleepy", "timeout": 2},
    "fg-s3-writer": {"handler": "fg_test_handlers.s3_writer", "timeout": 30},
    # A real Filegate handler with a 1 s timeout: the Lambda timeout path through awslambdaric (test_lambda_runtime).
    "fg-process-file-1s": {"handler": "filegate.lambdas.process_file.handler", "timeout": 1, "memory": 512},
}
COMPONENTS = ["postgres", "moto", "lambda", "ftp", "sftp", "stub_api", "lineage"]


@dataclass(frozen=True)
class LocalStack:
    stack: Stack
    env: dict[str, str]
    moto_url: str
    lambda_url: str
    stub_url: str
    ftp_port: int
    ftp_user: str
    ftp_password: str
    ftp_root: Path
    ftp_cert: Path
    db_url: str
    bucket: str
    queues: dict[str, str]


def make_stack(home: Path, **config: object) -> Stack:
    settings = StackConfig(
        feeds=TEST_FEEDS,
        extra_functions=TEST_FUNCTIONS,
        db_url=None,
        airflow_db_url=None,
        stub_api_token=None,
        ftp_tls="optional",
        openlineage=False,  # the provider stays disabled; test_lineage_dag turns it on for its own runs
        startup_timeout=60,
        **config,  # type: ignore[arg-type]
    )
    return Stack(home, Ports.free(), settings)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = make_stack(tmp_path_factory.mktemp("fghome"))
    try:
        stack.start(COMPONENTS)
        env = stack.env()
        ports = stack.ports
        yield LocalStack(
            stack=stack,
            env=env,
            moto_url=f"http://127.0.0.1:{ports.moto}",
            lambda_url=f"http://127.0.0.1:{ports.lambda_}",
            stub_url=f"http://127.0.0.1:{ports.stub_api}",
            ftp_port=ports.ftp,
            ftp_user=stack.ctx.config.ftp_user,
            ftp_password=stack.ctx.config.ftp_password,
            ftp_root=stack.ctx.paths.ftp_root,
            ftp_cert=stack.ctx.paths.tls / "cert.pem",
            db_url=env["FILEGATE_DB_URL"],
            bucket=stack.ctx.config.bucket,
            queues=dict(stack.ctx.state["aws"]["queues"]),
        )
    finally:
        leftovers = stack.stop()
        assert not leftovers, f"processes left behind: {leftovers}"
