"""S3 helpers that stream: no file body is ever held whole in memory."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def s3_client() -> Any:
    """A boto3 S3 client; AWS_ENDPOINT_URL points it at the local stack when set."""
    import boto3

    return boto3.client("s3")


class ObjectChanged(RuntimeError):
    """An object's content is not the content registered for it: its sha256 differs."""

    def __init__(self, bucket: str, key: str, registered: str, found: str, size: int) -> None:
        super().__init__(f"s3://{bucket}/{key} is not the file that was registered: its sha256 was "
                         f"{registered[:16]}… at registration and is {found[:16]}… now ({size:,} bytes). Filegate "
                         "never rewrites raw/, so something else replaced the object: upload the new content "
                         "under a new name (it gets its own file id)")


def download_with_sha256(s3: Any, bucket: str, key: str, target: Path, *,
                         expected_sha256: str | None = None) -> tuple[str, int]:
    """Streams an object to a local file and returns its sha256 and size, hashed on the way (one read).
    With `expected_sha256` (the hash taken at registration), other content raises ObjectChanged."""
    digest = hashlib.sha256()
    size = 0
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with target.open("wb") as out:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    found = digest.hexdigest()
    if expected_sha256 and found != expected_sha256:
        raise ObjectChanged(bucket, key, expected_sha256, found, size)
    return found, size


@dataclass(frozen=True)
class HashedObject:
    sha256: str
    size: int
    metadata: dict[str, str]  # the object's user metadata, from the same request (GET or HEAD)


def hash_object(s3: Any, bucket: str, key: str) -> HashedObject:
    """Streams an object through sha256 without keeping it; its metadata comes with the same request."""
    digest = hashlib.sha256()
    size = 0
    response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return HashedObject(digest.hexdigest(), size, dict(response.get("Metadata") or {}))


def sha256_from_head(s3: Any, bucket: str, key: str) -> HashedObject | None:
    """The object's sha256, size and metadata from one HeadObject, when S3 itself holds and verified a sha256 of
    the whole object (a PUT sent with a SHA-256 checksum: S3StreamWriter's single PUT, or a producer's); None
    otherwise, and the caller reads the object to hash it. User metadata is never trusted for this: nothing
    checks it, and a wrong hash could make a new file a `duplicate` of another.

    A multipart object's SHA-256 is COMPOSITE (a hash of the parts' hashes), so only FULL_OBJECT counts; a
    server that names no ChecksumType (moto) is trusted only for a single-part object (an ETag with no `-N`)."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    encoded = head.get("ChecksumSHA256") or ""
    kind = head.get("ChecksumType")
    single_part = "-" not in str(head.get("ETag", "")) and "-" not in encoded
    if not encoded or kind not in ("FULL_OBJECT", None) or (kind is None and not single_part):
        return None
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != hashlib.sha256().digest_size:
        return None
    return HashedObject(digest.hex(), int(head["ContentLength"]), dict(head.get("Metadata") or {}))


def sha256_of_object(s3: Any, bucket: str, key: str) -> tuple[str, int]:
    found = hash_object(s3, bucket, key)
    return found.sha256, found.size


def head_or_none(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's HEAD answer, or None when there is no such object; any other error is raised."""
    try:
        head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
        return head
    except Exception as exc:
        if getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


def put_json(s3: Any, bucket: str, key: str, document: Any) -> str:
    body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return key


def upload_file(s3: Any, bucket: str, key: str, path: Path, content_type: str) -> str:
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
    return key


def list_keys(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects
