"""moto in server mode: S3, SQS, SNS, Secrets Manager, CloudWatch Logs on one loopback endpoint.

moto keeps state in memory, so resources are bootstrapped every time the server starts.
"""

from __future__ import annotations

import logging

from filegate_stack.aws_resources import bootstrap, client
from filegate_stack.component import Component, StackContext
from filegate_stack.feeds import discover_feeds
from filegate_stack.procs import venv_bin, wait_until

logger = logging.getLogger(__name__)


def moto_url(ctx: StackContext) -> str:
    return f"http://127.0.0.1:{ctx.ports.moto}"


def _answers(url: str) -> bool:
    try:
        client("s3", url).list_buckets()
        return True
    except Exception:
        return False


class MotoComponent(Component):
    name = "moto"
    processes = ("moto",)

    def start(self, ctx: StackContext) -> None:
        env = ctx.base_env()
        # moto's Lambda must never run or fake handlers here: our own endpoint does that.
        env.setdefault("MOTO_ACCOUNT_ID", "123456789012")
        record = self.launch(ctx, "moto", [venv_bin("moto_server"), "-H", "127.0.0.1", "-p", str(ctx.ports.moto)], env)
        url = moto_url(ctx)
        wait_until(lambda: _answers(url), timeout=ctx.config.startup_timeout, what="moto", pid=record)
        self.bootstrap(ctx)

    def bootstrap(self, ctx: StackContext) -> None:
        feeds = discover_feeds(ctx.config.feeds)
        ctx.state["aws"] = bootstrap(moto_url(ctx), ctx.config.bucket, feeds)

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"endpoint": moto_url(ctx)}
