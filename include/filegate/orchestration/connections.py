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
        return StatusStore.connect(dsn, source=f"the Airflow connection {DB_CONN_ID!r}")
    dsn = load_settings().db_url or ""
    if not dsn:
        raise RuntimeError(f"no status store: define the Airflow connection {DB_CONN_ID!r} or FILEGATE_DB_URL")
    return StatusStore.connect(dsn, source="FILEGATE_DB_URL")


def s3_client() -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def _mask(*secrets: str | None) -> None:
    """Registers credentials with Airflow's secrets masker: any log line that contains them shows *** instead."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)


def api_target(contract: Contract) -> ApiTarget | None:
    """The feed's API target from its HTTP connection (`filegate_api` by default).

    Connection fields: host (+ schema http/https, port), login/password. `extra`:
    `auth_type` bearer | basic | api_key | none (default: basic with a login, bearer with only a password),
    `header` (api_key header name, default X-API-Key), `timeout`, `max_attempts`, `backoff`, and
    `concurrency` / `rate_limit_per_s` to override the contract's values for one environment.
    """
    api = contract.destinations.api
    if api is None:
        return None
    conn = _connection(api.conn_id)
    if conn is None or not conn.host:
        raise RuntimeError(f"feed {contract.name} posts to the API, but connection {api.conn_id!r} has no host")
    _mask(conn.password)
    extra = conn.extra_dejson or {}
    scheme = conn.schema or "https"
    host = conn.host if "://" not in conn.host else conn.host.split("://", 1)[1]
    base_url = f"{scheme}://{host.rstrip('/')}" + (f":{conn.port}" if conn.port else "")
    headers: dict[str, str] = {}
    auth = None
    default_auth = "basic" if conn.login else ("bearer" if conn.password else "none")
    auth_type = str(extra.get("auth_type", default_auth)).lower()
    if auth_type not in {"bearer", "basic", "api_key", "none"}:
        raise RuntimeError(f"connection {api.conn_id!r}: extra.auth_type must be bearer, basic, api_key or none, "
                           f"not {auth_type!r}")
    if auth_type != "none" and not conn.password:
        raise RuntimeError(f"connection {api.conn_id!r}: auth_type {auth_type} needs the secret in the password "
                           "field")
    if auth_type == "bearer":
        headers["Authorization"] = f"Bearer {conn.password}"
    elif auth_type == "api_key":
        headers[str(extra.get("header", "X-API-Key"))] = conn.password
    elif auth_type == "basic":
        auth = (conn.login or "", conn.password)
    _mask(*headers.values())
    rate = extra.get("rate_limit_per_s", api.rate_limit_per_s)
    target = ApiTarget(
        base_url=base_url, endpoint=api.endpoint, headers=headers, auth=auth,
        timeout_s=float(extra.get("timeout", 30)), max_attempts=int(extra.get("max_attempts", 5)),
        backoff_s=float(extra.get("backoff", 0.5)), concurrency=int(extra.get("concurrency", api.concurrency)),
        rate_limit_per_s=float(rate) if rate else None, envelope=api.envelope,
    )
    log.info("API target for feed %s: %s (auth %s, concurrency %d, rate limit %s/s)", contract.name, target.url,
             auth_type, target.concurrency, target.rate_limit_per_s or "none")
    return target
