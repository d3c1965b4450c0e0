"""The endpoint: the Invoke API server plus one sandbox per registered function (started lazily)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from filegate_stack.lambda_endpoint.functions import EndpointConfig
from filegate_stack.lambda_endpoint.invoke_api import invoke_api_handler
from filegate_stack.lambda_endpoint.sandbox import FunctionRuntime

logger = logging.getLogger(__name__)


class LambdaEndpoint:
    """The Invoke API server plus one FunctionRuntime per registered function (started lazily)."""

    def __init__(self, config: EndpointConfig, port: int) -> None:
        self.config = config
        # FILEGATE_BIND_HOST=0.0.0.0 only inside a container (docker-compose.yaml); loopback everywhere else.
        bind_host = os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1")
        self.server = ThreadingHTTPServer((bind_host, port), invoke_api_handler(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.invoke_url = f"http://127.0.0.1:{self.port}"
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.lock = threading.Lock()

    def runtime(self, name: str) -> FunctionRuntime | None:
        spec = self.config.functions.get(name)
        if spec is None:
            return None
        with self.lock:
            if name not in self.runtimes:
                self.runtimes[name] = FunctionRuntime(spec, self.config, self.invoke_url)
            return self.runtimes[name]

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        with self.lock:
            runtimes = list(self.runtimes.values())
        for runtime in runtimes:
            runtime.close()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local AWS Lambda Invoke + Runtime API endpoint")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON: functions, pythonpath, env, task_root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint = LambdaEndpoint(EndpointConfig.load(args.config), args.port)

    def shutdown(signum: int, _frame: Any) -> None:
        logger.info("signal %s: stopping runtimes and endpoint", signum)
        threading.Thread(target=endpoint.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    logger.info(
        "lambda endpoint on http://127.0.0.1:%s, functions: %s",
        endpoint.port,
        ", ".join(sorted(endpoint.config.functions)),
    )
    try:
        endpoint.serve_forever()
    finally:
        endpoint.close()
    return 0
