"""Uploads as arrivals: a file sent to the upload endpoint becomes a raw/ object like any other.

The name must be usable and match the feed's pattern (else the file would never be processed); raw/ is never
overwritten, so a name already used today gets a suffix; the processing parameters, the uploader and the
original name travel as the object's metadata (filegate.storage.metadata). The bytes stream through
filegate.ingestion.transfer.S3StreamWriter, as FTP pickups do. The HTTP side is filegate.orchestration.webapp.
"""

from __future__ import annotations

import fnmatch
import secrets
from datetime import UTC, datetime
from typing import Any

from filegate.contracts.model import Contract
from filegate.ingestion.transfer import S3StreamWriter
from filegate.storage import keys
from filegate.storage.metadata import upload_metadata
from filegate.storage.s3 import head_or_none


class UploadRefused(ValueError):
    """The upload cannot be stored; `conflict` when no free key was found (the name is fine)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def free_raw_key(s3: Any, bucket: str, feed: str, name: str) -> str:
    """raw/ is never overwritten: a name already used today gets a suffix before its extension."""
    today = datetime.now(UTC).date()
    key = keys.raw_key(feed, today, name)
    if head_or_none(s3, bucket, key) is None:
        return key
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, f".{ext}") if dot else (name, "")
    for _ in range(20):
        candidate = keys.raw_key(feed, today, f"{stem}_{datetime.now(UTC):%H%M%S}-{secrets.token_hex(3)}{ext}")
        if head_or_none(s3, bucket, candidate) is None:
            return candidate
    raise UploadRefused(f"could not find a free key for {name!r} under {keys.raw_prefix(feed)}", conflict=True)


def open_upload(s3: Any, bucket: str, contract: Contract, original_name: str, *, params: dict[str, Any],
                note: str | None, user: str, part_bytes: int) -> S3StreamWriter:
    """A writer for the uploaded file's raw/ object; nothing exists in S3 until it completes."""
    name = keys.safe_name(original_name)
    if not original_name.strip() or name == "unnamed":
        raise UploadRefused("the `file` part has no usable file name")
    if not fnmatch.fnmatch(name, contract.source.pattern):
        raise UploadRefused(f"feed {contract.name} takes files matching {contract.source.pattern!r}; "
                            f"{name!r} would never be processed")
    key = free_raw_key(s3, bucket, contract.name, name)
    return S3StreamWriter(s3, bucket, key, expected_size=None, part_size=part_bytes,
                          metadata=upload_metadata(params, user=user, original_name=original_name, note=note))
