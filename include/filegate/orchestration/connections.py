"""Builds the library's clients from Airflow connections (Secrets Manager on MWAA, env vars locally)."""

from __future__ import annotations

import logging
import os
from typing import Any

from filegate.contracts.model import Contract
from filegate.delivery.client import ApiTarget
from filegate.settings import load_settings
from filegate.status.store import StatusStore

log = logging.getLogger(__name__)
AWS_CONN_ID = "aws_default"
DB_CONN_ID = "filegate_db"
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


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


def server_endpoint(contract: Contract) -> Any:
    """The FTP/FTPS or SFTP endpoint of a feed picked up from a partner's server (filegate.ingestion.remote)."""
    if contract.source.kind == "ftp" and contract.source.ftp is not None:
        return ftp_endpoint(contract.source.ftp.conn_id, contract.source.ftp.tls)
    if contract.source.kind == "sftp" and contract.source.sftp is not None:
        return sftp_endpoint(contract.source.sftp.conn_id)
    raise ValueError(f"feed {contract.name} is not picked up from a server (source.kind {contract.source.kind})")


def ftp_endpoint(conn_id: str, tls: bool) -> Any:
    """An FtpEndpoint from the Airflow connection `conn_id` (conn type ftp or ftps).

    TLS is on when the contract says `tls: true`, the connection type is `ftps` or its extra has `"tls": true`.
    Extras: `passive` (default true), `ca_file` (else FILEGATE_FTP_CA_FILE, else the system CAs), `timeout`."""
    from filegate.ingestion.ftp import FtpEndpoint

    conn = _required_connection(conn_id, "FTP")
    extra = conn.extra_dejson or {}
    _mask(conn.password)
    return FtpEndpoint(
        host=conn.host, port=int(conn.port or 21), user=conn.login or "anonymous", password=conn.password or "",
        tls=tls or conn.conn_type == "ftps" or str(extra.get("tls", "")).lower() in TRUE,
        ca_file=extra.get("ca_file") or os.environ.get("FILEGATE_FTP_CA_FILE") or None,
        passive=str(extra.get("passive", "true")).lower() not in FALSE,
        timeout_s=float(extra.get("timeout", 60)),
    )


def sftp_endpoint(conn_id: str) -> Any:
    """An SftpEndpoint from the Airflow SSH/SFTP connection `conn_id`, read the way the SSH provider reads it.

    Fields: host, port (22), login, password. Extras: `host_key` (required: the server's public key, e.g.
    `ssh-ed25519 AAAA…`) with `no_host_key_check` false, `private_key` (PEM/OpenSSH text) or `key_file`,
    `private_key_passphrase`, `conn_timeout`. A host key is never learned: without one the pickup refuses."""
    from filegate.ingestion.sftp import SftpEndpoint

    conn = _required_connection(conn_id, "SFTP")
    extra = conn.extra_dejson or {}
    host_key = str(extra.get("host_key") or "").strip()
    if not host_key:
        raise RuntimeError(f"SFTP connection {conn_id!r} has no host_key extra: put the server's public host key "
                           "there (e.g. from `ssh-keyscan -t ed25519 <host>`, checked with the partner); "
                           "Filegate never accepts an unknown host key")
    if str(extra.get("no_host_key_check", "false")).lower() not in FALSE:
        raise RuntimeError(f"SFTP connection {conn_id!r} sets no_host_key_check; Filegate always verifies the host "
                           "key: set it to false")
    private_key = extra.get("private_key") or None
    if not private_key and extra.get("key_file"):
        with open(str(extra["key_file"]), encoding="utf-8") as handle:
            private_key = handle.read()
    passphrase = extra.get("private_key_passphrase") or None
    _mask(conn.password, passphrase, private_key)
    return SftpEndpoint(
        host=conn.host, host_key=host_key, port=int(conn.port or 22), user=conn.login or "",
        password=conn.password or None, private_key=private_key, key_passphrase=passphrase,
        timeout_s=float(extra.get("conn_timeout") or extra.get("timeout") or 60), conn_id=conn_id,
    )


def _required_connection(conn_id: str, protocol: str) -> Any:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise RuntimeError(f"{protocol} connection {conn_id!r} has no host")
    return conn


def callback_secret(conn_id: str) -> bytes:
    """The HMAC secret that signs a feed's callbacks: the password of the Airflow connection `conn_id` (any type;
    on MWAA, from Secrets Manager like every connection)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.password:
        raise RuntimeError(f"callback signing connection {conn_id!r} has no password: set the shared secret there")
    _mask(conn.password)
    return str(conn.password).encode()
