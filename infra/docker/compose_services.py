"""Entry point of the support containers in docker-compose.yaml and docker-compose.override.yml.

Each service runs the same in-repo server the no-Docker stack runs (infra/local/filegate_stack), bound to 0.0.0.0
inside its container (FILEGATE_BIND_HOST) so the other containers reach it by service name:

    python infra/docker/compose_services.py aws-init | lambda | ftp | sftp | stub-api | lineage
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path


def _wait_for(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def aws_init() -> int:
    """Bucket, one arrival queue + S3 notification per feed, alert topic: what the template creates on AWS."""
    from filegate_stack.aws_resources import bootstrap
    from filegate_stack.feeds import discover_feeds

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    _wait_for(f"{endpoint}/moto-api/")
    state = bootstrap(endpoint, os.environ["FILEGATE_BUCKET"], discover_feeds(None))
    print(json.dumps(state, indent=2))
    return 0


def lambda_endpoint() -> int:
    from filegate_stack import lambda_endpoint as endpoint
    from filegate_stack.lambda_functions import endpoint_config

    include = Path(os.environ.get("FILEGATE_REPO", "/opt/filegate")) / "include"
    config = endpoint_config(
        extra={}, pythonpath=[str(include)], task_root=include,
        env={"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], "FILEGATE_BUCKET": os.environ["FILEGATE_BUCKET"]},
    )
    path = Path("/tmp/lambda-functions.json")
    path.write_text(json.dumps(config))
    return endpoint.main(["--port", os.environ.get("FILEGATE_LAMBDA_PORT", "9150"), "--config", str(path)])


def ftp() -> int:
    from filegate_stack import ftp_server

    root = Path(os.environ.get("FILEGATE_FTP_ROOT", "/tmp/ftp"))
    root.mkdir(parents=True, exist_ok=True)
    return ftp_server.main(["--port", os.environ.get("FILEGATE_FTP_PORT", "2121"), "--root", str(root),
                            "--passive-ports", os.environ.get("FILEGATE_FTP_PASSIVE_PORTS", "30000-30009")])


def sftp() -> int:
    """Keys persist in the repository mount (.filegate/ is ignored by git), so the host key pinned in the
    connection (FILEGATE_SFTP_HOST_KEY in .env, which compose interpolates) stays valid across restarts."""
    from filegate_stack import sftp_server
    from filegate_stack.ssh_keys import ensure_ssh_keys

    root = Path(os.environ.get("FILEGATE_SFTP_ROOT", "/tmp/sftp"))
    keys = Path(os.environ.get("FILEGATE_SFTP_KEYS", "/opt/filegate/.filegate/compose-ssh"))
    host_key = ensure_ssh_keys(keys).host_public
    if os.environ.get("FILEGATE_SFTP_HOST_KEY", "").strip() != host_key:
        print(f"The Airflow connection filegate_sftp must pin this server's host key: put\n"
              f"  FILEGATE_SFTP_HOST_KEY='{host_key}'\ninto .env (compose) or airflow_settings.yaml (Astro) and "
              "restart Airflow; until then SFTP pickups are refused.", flush=True)
    return sftp_server.main(["--port", os.environ.get("FILEGATE_SFTP_PORT", "2222"), "--root", str(root),
                             "--keys", str(keys)])


def stub_api() -> int:
    from filegate_stack import stub_api as api

    return api.main(["--port", os.environ.get("FILEGATE_STUB_API_PORT", "8150")])


def lineage() -> int:
    from filegate_stack import lineage_receiver

    return lineage_receiver.main(["--port", os.environ.get("FILEGATE_LINEAGE_PORT", "8160"),
                                  "--data-dir", "/tmp/filegate-lineage"])


SERVICES = {"aws-init": aws_init, "lambda": lambda_endpoint, "ftp": ftp, "sftp": sftp, "stub-api": stub_api,
            "lineage": lineage}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SERVICES:
        sys.exit(f"usage: compose_services.py {{{'|'.join(SERVICES)}}}")
    sys.exit(SERVICES[sys.argv[1]]())
