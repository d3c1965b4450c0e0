"""Builds the library's clients from Airflow connections (Secrets Manager on MWAA, env vars locally)."""

from __future__ import annotations

import logging
from typing import Any

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget
from filegate.settings import load_settings
from filegate.status.store import StatusStore

log = logging.getLogger(__name__)
AWS_CONN_ID = "aws_default"
DB_CONN_ID = "filegate_db"


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # the connection is optional where an env var gives the same
        log.info("connection %s not available (%s)", conn_id, exc)
        return None


def status_store() -> StatusStore:
    from psycopg.conninfo import make_conninfo

    conn = _connection(DB_CONN_ID)
    if conn is not None and conn.host:
        dsn = make_conninfo(host=conn.host, port=conn.port or None, user=conn.login or None,
                            password=conn.password or None, dbname=conn.schema or None)
    else:
        dsn = load_settings().db_url or ""
        if not dsn:
            raise RuntimeError(f"no status store: define the Airflow connection {DB_CONN_ID!r} or FILEGATE_DB_URL")
    return StatusStore.connect(dsn)


def s3_client() -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def api_target(contract: Contract) -> ApiTarget | None:
    api = contract.destinations.api
    if api is None:
        return None
    conn = _connection(api.conn_id)
    if conn is None or not conn.host:
        raise RuntimeError(f"feed {contract.name} posts to the API, but connection {api.conn_id!r} has no host")
    extra = conn.extra_dejson or {}
    scheme = conn.schema or "https"
    host = conn.host if "://" not in conn.host else conn.host.split("://", 1)[1]
    base_url = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    headers: dict[str, str] = {}
    auth = None
    auth_type = extra.get("auth_type", "basic" if conn.login else "none")
    if auth_type == "bearer" and conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    elif auth_type == "api_key" and conn.password:
        headers[extra.get("header", "X-API-Key")] = conn.password
    elif auth_type == "basic" and conn.login:
        auth = (conn.login, conn.password or "")
    return ApiTarget(
        base_url=base_url, endpoint=api.endpoint, headers=headers, auth=auth,
        timeout_s=float(extra.get("timeout", 30)), max_attempts=int(extra.get("max_attempts", 5)),
        concurrency=int(extra.get("concurrency", 4)),
    )
