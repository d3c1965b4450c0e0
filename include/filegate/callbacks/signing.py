"""The callback signature: HMAC-SHA256 over `<timestamp>.<body>` with the feed's shared secret, sent as
`X-Filegate-Signature: sha256=<hex>` beside `X-Filegate-Timestamp: <unix seconds>`. Signing the timestamp with
the body lets a receiver refuse a replayed request (an old timestamp) as well as a forged one."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Filegate-Signature"
TIMESTAMP_HEADER = "X-Filegate-Timestamp"
DEFAULT_TOLERANCE_S = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, *, timestamp: str, body: bytes, signature: str, now: float,
           tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: the signature matches (compared in constant time) and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
