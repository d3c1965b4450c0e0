"""The S3 user metadata Filegate writes on raw objects (`x-amz-meta-<name>`): every name, and how each value is
encoded. S3 user metadata is ASCII only, so JSON goes with `\\u` escapes and other text percent-encoded."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

# Where an ingest_ftp copy came from: the quoted identity of the remote file (path|size|mtime).
SOURCE = "filegate-source"
# The sha256 of an object written in one PUT (a multipart copy has none: the registration hashes it).
SHA256 = "sha256"
# Processing parameters given with an upload (e.g. a PDF's page map): compact JSON.
PARAMS = "filegate-params"
UPLOADED_BY = "filegate-uploaded-by"
ORIGINAL_NAME = "filegate-original-name"
NOTE = "filegate-note"


def upload_metadata(params: dict[str, Any], *, user: str, original_name: str, note: str | None) -> dict[str, str]:
    metadata = {PARAMS: json.dumps(params, separators=(",", ":"), ensure_ascii=True),
                UPLOADED_BY: quote(user, safe=""), ORIGINAL_NAME: quote(original_name, safe="")}
    if note:
        metadata[NOTE] = quote(note, safe="")
    return metadata


def source_metadata(identity: str) -> dict[str, str]:
    return {SOURCE: quote(identity)}


def source_identity(metadata: dict[str, str]) -> str | None:
    """The remote identity an FTP copy carries, or None for an object that did not come from FTP."""
    return unquote(metadata.get(SOURCE, "")) or None


def params_of(metadata: dict[str, str], *, where: str) -> dict[str, Any]:
    """An upload's processing parameters ({} when none were given); `where` names the object in errors."""
    text = metadata.get(PARAMS)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"x-amz-meta-{PARAMS} of {where} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"x-amz-meta-{PARAMS} of {where} is not a JSON object")
    return value
