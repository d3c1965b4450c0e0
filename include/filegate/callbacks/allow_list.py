"""Which callback URLs a feed accepts: https (http only where the contract allows it, e.g. a local stack), a host
in the feed's `callbacks.allowed_hosts` (exact, or `*.example.com` for its subdomains), no credentials in the
URL. Checked when the upload arrives and again before each POST (the contract may have changed since)."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_CHARS = 1000


class CallbackRefused(ValueError):
    """The URL may not be called back; the message says why and what the feed allows."""


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.lower().rstrip(".")
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]):
            return True
    return False


def check_callback_url(url: str, *, feed: str, allowed_hosts: list[str], allow_http: bool) -> str:
    """The URL itself when the feed may call it back; else CallbackRefused."""
    if not allowed_hosts:
        raise CallbackRefused(f"feed {feed} takes no callback URLs: its contract lists no callbacks.allowed_hosts")
    if len(url) > MAX_URL_CHARS:
        raise CallbackRefused(f"the callback URL is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise CallbackRefused(f"the callback URL must use {' or '.join(schemes)}, not {parts.scheme or 'nothing'!r}")
    if parts.username or parts.password:
        raise CallbackRefused("the callback URL must not carry credentials; the body is signed instead")
    if not parts.hostname or not host_allowed(parts.hostname, allowed_hosts):
        raise CallbackRefused(f"host {parts.hostname!r} is not among feed {feed}'s callbacks.allowed_hosts "
                              f"({', '.join(allowed_hosts)})")
    return url
