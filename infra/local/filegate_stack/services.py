"""Launchers for the in-repo servers: Lambda endpoint, FTP server, SFTP server, stub API, lineage receiver."""

from __future__ import annotations

import logging

from filegate_stack.component import Component, StackContext, dump_json
from filegate_stack.lambda_functions import endpoint_config
from filegate_stack.procs import http_ok, port_open, wait_until
from filegate_stack.ssh_keys import ensure_ssh_keys

logger = logging.getLogger(__name__)


def lambda_url(ctx: StackContext) -> str:
    return f"http://127.0.0.1:{ctx.ports.lambda_}"


def stub_api_url(ctx: StackContext) -> str:
    return f"http://127.0.0.1:{ctx.ports.stub_api}"


def lineage_url(ctx: StackContext) -> str:
    return f"http://127.0.0.1:{ctx.ports.lineage}"


class LambdaComponent(Component):
    name = "lambda"
    processes = ("lambda",)

    def start(self, ctx: StackContext) -> None:
        include = ctx.repo / "include"
        pythonpath = [str(include), str(ctx.repo / "tests" / "fixtures" / "lambdas"), *ctx.config.extra_pythonpath]
        config = endpoint_config(
            extra=ctx.config.extra_functions,
            pythonpath=pythonpath,
            task_root=include,
            env={
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ctx.ports.moto}",
                "FILEGATE_BUCKET": ctx.config.bucket,
            }
            | ({"AWS_ENDPOINT_URL_S3": ctx.config.s3_endpoint_url} if ctx.config.s3_endpoint_url else {}),
        )
        config_path = ctx.paths.lambda_dir / "functions.json"
        dump_json(config_path, config)
        record = self.launch(
            ctx,
            "lambda",
            [
                ctx.python(),
                "-m",
                "filegate_stack.lambda_endpoint",
                "--port",
                str(ctx.ports.lambda_),
                "--config",
                str(config_path),
            ],
            ctx.base_env(),
        )
        wait_until(
            lambda: http_ok(f"{lambda_url(ctx)}/_endpoint/health"),
            timeout=ctx.config.startup_timeout,
            what="lambda endpoint",
            pid=record,
        )
        ctx.state["lambda"] = {"functions": sorted(config["functions"])}

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"endpoint": lambda_url(ctx)}


class FtpComponent(Component):
    name = "ftp"
    processes = ("ftp",)

    def start(self, ctx: StackContext) -> None:
        first, last = ctx.ports.ftp_passive
        argv = [
            ctx.python(),
            "-m",
            "filegate_stack.ftp_server",
            "--port",
            str(ctx.ports.ftp),
            "--root",
            str(ctx.paths.ftp_root),
            "--user",
            ctx.config.ftp_user,
            "--passive-ports",
            f"{first}-{last}",
            "--tls-dir",
            str(ctx.paths.tls),
        ]
        if ctx.config.ftp_tls == "required":
            argv.append("--tls-required")
        elif ctx.config.ftp_tls == "optional":
            argv.append("--tls")
        env = ctx.base_env()
        # The password travels by environment, not argv, so `ps` does not show it.
        env["FILEGATE_FTP_PASSWORD"] = ctx.config.ftp_password
        record = self.launch(ctx, "ftp", argv, env)
        wait_until(lambda: port_open(ctx.ports.ftp), timeout=ctx.config.startup_timeout, what="ftp", pid=record)
        ctx.state["ftp"] = {"tls": ctx.config.ftp_tls, "cert": str(ctx.paths.tls / "cert.pem")}

    def urls(self, ctx: StackContext) -> dict[str, str]:
        scheme = "ftps" if ctx.config.ftp_tls == "required" else "ftp"
        return {"server": f"{scheme}://{ctx.config.ftp_user}@127.0.0.1:{ctx.ports.ftp}/"}


class SftpComponent(Component):
    name = "sftp"
    processes = ("sftp",)

    def start(self, ctx: StackContext) -> None:
        argv = [ctx.python(), "-m", "filegate_stack.sftp_server", "--port", str(ctx.ports.sftp),
                "--root", str(ctx.paths.sftp_root), "--user", ctx.config.sftp_user, "--keys", str(ctx.paths.ssh)]
        env = ctx.base_env()
        env["FILEGATE_SFTP_PASSWORD"] = ctx.config.sftp_password  # by environment: `ps` never shows it
        record = self.launch(ctx, "sftp", argv, env)
        wait_until(lambda: port_open(ctx.ports.sftp), timeout=ctx.config.startup_timeout, what="sftp", pid=record)
        ctx.state["sftp"] = {"host_key": ensure_ssh_keys(ctx.paths.ssh).host_public}

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"server": f"sftp://{ctx.config.sftp_user}@127.0.0.1:{ctx.ports.sftp}/"}


class StubApiComponent(Component):
    name = "stub_api"
    processes = ("stub_api",)

    def start(self, ctx: StackContext) -> None:
        record = self.launch(
            ctx,
            "stub_api",
            [
                ctx.python(),
                "-m",
                "filegate_stack.stub_api",
                "--port",
                str(ctx.ports.stub_api),
                "--data-dir",
                str(ctx.paths.stub_api),
            ],
            ctx.base_env(),
        )
        wait_until(
            lambda: http_ok(f"{stub_api_url(ctx)}/_stub/stats"),
            timeout=ctx.config.startup_timeout,
            what="stub API",
            pid=record,
        )

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"base": stub_api_url(ctx)}


class LineageReceiverComponent(Component):
    """The OpenLineage HTTP transport's target: Airflow (and Filegate's file events) send lineage here."""

    name = "lineage"
    processes = ("lineage",)

    def start(self, ctx: StackContext) -> None:
        argv = [ctx.python(), "-m", "filegate_stack.lineage_receiver", "--port", str(ctx.ports.lineage),
                "--data-dir", str(ctx.paths.lineage)]
        record = self.launch(ctx, "lineage", argv, ctx.base_env())
        wait_until(lambda: http_ok(f"{lineage_url(ctx)}/_receiver/health"), timeout=ctx.config.startup_timeout,
                   what="lineage receiver", pid=record)

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"events": f"{lineage_url(ctx)}/api/v1/lineage"}
