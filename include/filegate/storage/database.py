"""Connecting with a DSN without ever echoing it: libpq's messages quote parts of a malformed connection string
(`missing "=" after "<a word of the password>"`), and a password with an unescaped `@` ends up in the host name
libpq fails to resolve. Errors raised here name where the DSN came from, never its value or its password."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

REDACTED = "***"
MAX_MESSAGE_CHARS = 300
_URI_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#]*)@", re.IGNORECASE)


class ConnectError(psycopg.OperationalError):
    """A connection failed; the message holds neither the DSN nor its password."""


def dsn_secrets(dsn: str) -> list[str]:
    """Values that must never appear in a message: the DSN, its password (raw, decoded, encoded), the user info
    of a URI, and any host holding an `@` (the tail of a password with an unescaped `@`). Longest first."""
    values = {dsn, dsn.strip()}
    match = _URI_USERINFO.match(dsn.strip())
    if match:
        userinfo = match.group(1)
        password = userinfo.partition(":")[2]
        values |= {userinfo, urllib.parse.unquote(userinfo), password, urllib.parse.unquote(password)}
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        params = {}
    password = str(params.get("password") or "")
    if password:
        values |= {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}
    for host in str(params.get("host") or "").split(","):
        if "@" in host:
            values |= {host, host.partition("@")[0]}
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = " ".join(text.split())  # one line: libpq's messages hold newlines and tabs
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"


def connect(dsn: str, *, source: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """psycopg.connect(dsn, **kwargs); a failure raises ConnectError naming `source` (e.g. "env ORDERS_DSN"),
    with libpq's reason when it holds nothing of the DSN, and no chained exception that would."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error:
        raise ConnectError(f"cannot connect to Postgres with the DSN from {source}: it is not a valid libpq "
                           f"connection string or postgresql:// URI (its value is not shown)") from None
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as exc:
        reason = scrub(str(exc), dsn_secrets(dsn))
        error = ConnectError(f"cannot connect to Postgres with the DSN from {source}: {reason}")
    raise error from None
