"""The environment clients need to reach the stack: library settings, AWS endpoints, Airflow connections."""

from __future__ import annotations

import json
import urllib.parse

from filegate_stack.aws_resources import ACCOUNT_ID, ALERT_TOPIC, REGION
from filegate_stack.component import StackContext
from filegate_stack.postgres import airflow_metadata_url, socket_dir_of, status_store_url
from filegate_stack.ssh_keys import ensure_ssh_keys


def aws_connection(ctx: StackContext) -> str:
    moto = f"http://127.0.0.1:{ctx.ports.moto}"
    lam = f"http://127.0.0.1:{ctx.ports.lambda_}"
    # Lambda goes to our endpoint (moto cannot run handlers); long reads for slow handlers.
    services: dict[str, dict[str, object]] = {"lambda": {"endpoint_url": lam, "read_timeout": 910}}
    if ctx.config.s3_endpoint_url:
        services["s3"] = {"endpoint_url": ctx.config.s3_endpoint_url}
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": REGION, "endpoint_url": moto, "service_config": services},
        }
    )


def _postgres_connection(ctx: StackContext) -> str:
    if ctx.config.db_url:
        url = urllib.parse.urlsplit(ctx.config.db_url)
        query = urllib.parse.parse_qs(url.query)
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": url.hostname or query.get("host", [""])[0],
                "port": url.port,
                "login": urllib.parse.unquote(url.username or ""),
                "password": urllib.parse.unquote(url.password or ""),
                "schema": url.path.lstrip("/"),
            }
        )
    # libpq treats a host starting with "/" as the Unix socket directory.
    return json.dumps({"conn_type": "postgres", "host": socket_dir_of(ctx), "login": "postgres", "schema": "filegate"})


def sftp_connection(ctx: StackContext) -> str:
    """The SSH provider's connection form: password and private key both work; the host key is pinned."""
    keys = ensure_ssh_keys(ctx.paths.ssh)
    return json.dumps(
        {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": ctx.ports.sftp,
            "login": ctx.config.sftp_user,
            "password": ctx.config.sftp_password,
            "extra": {
                "host_key": keys.host_public,
                "no_host_key_check": False,
                "private_key": keys.client_private_text,
                "conn_timeout": 30,
            },
        }
    )


def openlineage_env(receiver_url: str) -> dict[str, str]:
    """The OpenLineage provider's HTTP transport to a receiver (filegate_stack.lineage_receiver)."""
    transport = {"type": "http", "url": receiver_url, "endpoint": "api/v1/lineage", "timeout": 5}
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "filegate-local"}


def client_env(ctx: StackContext) -> dict[str, str]:
    moto = f"http://127.0.0.1:{ctx.ports.moto}"
    lam = f"http://127.0.0.1:{ctx.ports.lambda_}"
    stub = f"http://127.0.0.1:{ctx.ports.stub_api}"
    socket_dir = socket_dir_of(ctx)
    aws_state = ctx.state.get("aws", {})
    env = {
        "FILEGATE_HOME": str(ctx.paths.home),
        "FILEGATE_BUCKET": ctx.config.bucket,
        "FILEGATE_DB_URL": ctx.config.db_url or status_store_url(socket_dir),
        "FILEGATE_SQS_QUEUE_BASE_URL": aws_state.get("queue_base_url", f"{moto}/{ACCOUNT_ID}"),
        "FILEGATE_ALERT_TOPIC_ARN": aws_state.get(
            "alert_topic_arn", f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{ALERT_TOPIC}"
        ),
        "FILEGATE_API_URL": stub,
        "FILEGATE_LINEAGE_URL": f"http://127.0.0.1:{ctx.ports.lineage}",
        "FILEGATE_FTP_HOST": "127.0.0.1",
        "FILEGATE_FTP_PORT": str(ctx.ports.ftp),
        "FILEGATE_FTP_USER": ctx.config.ftp_user,
        "FILEGATE_FTP_PASSWORD": ctx.config.ftp_password,
        "FILEGATE_FTP_CA_FILE": str(ctx.paths.tls / "cert.pem"),
        "FILEGATE_SFTP_PORT": str(ctx.ports.sftp),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_LAMBDA": lam,
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(ctx),
        "AIRFLOW_CONN_FILEGATE_DB": _postgres_connection(ctx),
        "AIRFLOW_CONN_FILEGATE_API": json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": ctx.ports.stub_api, "schema": "http"}
            | ({"password": ctx.config.stub_api_token} if ctx.config.stub_api_token else {})
        ),
        "AIRFLOW_CONN_FILEGATE_FTP": json.dumps(
            {
                "conn_type": "ftp",
                "host": "127.0.0.1",
                "port": ctx.ports.ftp,
                "login": ctx.config.ftp_user,
                "password": ctx.config.ftp_password,
            }
        ),
    }
    env["AIRFLOW_CONN_FILEGATE_SFTP"] = sftp_connection(ctx)
    if ctx.config.openlineage:
        env.update(openlineage_env(f"http://127.0.0.1:{ctx.ports.lineage}"))
    if ctx.config.stub_api_token:
        env["FILEGATE_STUB_API_TOKEN"] = ctx.config.stub_api_token
    if ctx.config.s3_endpoint_url:  # botocore: a service's own endpoint variable beats AWS_ENDPOINT_URL
        env["AWS_ENDPOINT_URL_S3"] = ctx.config.s3_endpoint_url
    env["FILEGATE_AIRFLOW_DB_URL"] = ctx.config.airflow_db_url or airflow_metadata_url(socket_dir)
    return env


def _single_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def render_exports(env: dict[str, str]) -> str:
    """`export NAME='value'` lines, safe to `source` from bash/zsh."""
    return "".join(f"export {name}={_single_quote(value)}\n" for name, value in sorted(env.items()))
