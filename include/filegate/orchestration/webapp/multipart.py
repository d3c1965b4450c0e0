"""The upload endpoint's HTTP side: a multipart body parsed as it arrives and its file handed, chunk by chunk, to
the arrival it becomes (filegate.ingestion.upload).

The body is never whole in memory or on disk: the `metadata` part (JSON, optional) must come before the `file`
part, whose bytes go to S3 in 8 MiB multipart parts. Exceeding the size limit, a client that disconnects or
any error aborts the multipart upload, so nothing is left in S3. The S3 event of the new object starts
`process_<feed>` like any other arrival.

Processing parameters (e.g. a PDF page map) travel as S3 object metadata `x-amz-meta-filegate-params`
(compact JSON); ingestion copies them into the status store's `file.params`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from filegate.callbacks.allow_list import CallbackRefused, check_callback_url
from filegate.callbacks.dispatch import CALLBACK_PARAM
from filegate.contracts.model import Contract
from filegate.ingestion.transfer import S3StreamWriter
from filegate.ingestion.upload import UploadRefused, open_upload

log = logging.getLogger(__name__)
MAX_METADATA_BYTES = 16 << 10
# S3 allows 2 KB of user metadata per object in total; the params get most of it.
MAX_PARAMS_BYTES = 1536
FORM_OVERHEAD_BYTES = 64 << 10


class UploadMetadata(BaseModel):
    """The optional `metadata` part of an upload."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="processing parameters, e.g. {\"page_map\": {\"part1\": [0, 1]}}")
    note: str | None = Field(default=None, max_length=500, description="free text kept with the object")
    callback_url: str | None = Field(default=None, max_length=1000,
                                     description="POSTed a signed JSON body when the file reaches a terminal status; "
                                                 "only hosts in the feed's callbacks.allowed_hosts")


class UploadResult(BaseModel):
    feed: str
    bucket: str
    raw_key: str
    name: str
    original_name: str
    size_bytes: int
    sha256: str
    params: dict[str, Any]
    uploaded_by: str
    status_url: str = Field(description="the file's status in this API, once the processing run registered it")


def _fail(code: int, message: str) -> HTTPException:
    return HTTPException(code, message)


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)


class _Events:
    """Collects python-multipart's callbacks so the async loop can act on them after each chunk."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, Any]] = []
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.queue.append(("headers", dict(self._headers))),
            "on_part_data": lambda d, s, e: self.queue.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.queue.append(("end", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def drain(self) -> list[tuple[str, Any]]:
        events, self.queue = self.queue, []
        return events


def _part_of(headers: dict[bytes, bytes]) -> _Part:
    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    filename = options.get(b"filename")
    return _Part(name=name, filename=filename.decode("utf-8", "replace") if filename is not None else None,
                 headers=headers)


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise _fail(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    "send multipart/form-data with a `file` part (and optionally a `metadata` JSON part before it)")
    return options[b"boundary"]


def _metadata(raw: bytes) -> UploadMetadata:
    try:
        meta = UploadMetadata.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'metadata'}: {e['msg']}" for e in exc.errors())
        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, f"metadata is not valid: {problems}") from exc
    if len(json.dumps(meta.params, separators=(",", ":"))) > MAX_PARAMS_BYTES:
        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                    f"metadata.params is larger than {MAX_PARAMS_BYTES} bytes of JSON (it travels as S3 metadata)")
    return meta


async def stream_upload(chunks: AsyncIterator[bytes], *, content_type: str | None, content_length: str | None,
                        contract: Contract, s3: Any, bucket: str, user: str, max_bytes: int,
                        part_bytes: int) -> UploadResult:
    """Parses the multipart body chunk by chunk and streams its file into raw/<feed>/<today>/<safe name>."""
    boundary = boundary_of(content_type)
    if content_length and content_length.isdigit() and int(content_length) > max_bytes + FORM_OVERHEAD_BYTES:
        raise _fail(status.HTTP_413_CONTENT_TOO_LARGE,
                    f"the request ({int(content_length):,} bytes) exceeds the upload limit of {max_bytes:,} bytes")
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
    part: _Part | None = None
    meta: UploadMetadata | None = None
    meta_raw = bytearray()
    writer: S3StreamWriter | None = None
    original_name = ""
    file_done = False
    try:
        async for chunk in chunks:
            parser.write(chunk)
            for kind, value in events.drain():
                if kind == "headers":
                    part = _part_of(value)
                    if part.name == "metadata":
                        if writer is not None or file_done:
                            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                        "the `metadata` part must come before the `file` part")
                    elif part.name == "file":
                        if writer is not None or file_done:
                            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, "send one `file` part per request")
                        original_name = part.filename or ""
                        meta = meta or _metadata(bytes(meta_raw))
                        writer = await _open_writer(contract, s3, bucket, original_name, meta, user, part_bytes)
                    else:
                        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                    f"unexpected form field {part.name!r}: send `metadata` (optional) and `file`")
                elif kind == "data" and part is not None:
                    if part.name == "metadata":
                        meta_raw += value
                        if len(meta_raw) > MAX_METADATA_BYTES:
                            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                        f"metadata is larger than {MAX_METADATA_BYTES} bytes")
                    elif writer is not None:
                        if writer.size + len(value) > max_bytes:
                            raise _fail(status.HTTP_413_CONTENT_TOO_LARGE,
                                        f"{original_name!r} exceeds the upload limit of {max_bytes:,} bytes")
                        await run_in_threadpool(writer.write, value)  # uploads a part whenever one fills
                elif kind == "end" and part is not None:
                    if part.name == "metadata":
                        meta = _metadata(bytes(meta_raw))
                    elif part.name == "file":
                        file_done = True
                    part = None
        parser.finalize()
        if writer is None or meta is None:
            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, "no `file` part in the form")
        if not file_done:
            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, "the form ended before the file did")
        if writer.size == 0:
            raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{original_name!r} is empty; nothing was stored")
        stored = await run_in_threadpool(writer.complete)
    except BaseException:
        if writer is not None:
            await run_in_threadpool(writer.abort)
        raise
    log.info("upload by %s stored as s3://%s/%s (%d bytes)", user, bucket, stored.key, stored.size)
    return UploadResult(feed=contract.name, bucket=bucket, raw_key=stored.key, name=stored.key.rsplit("/", 1)[1],
                        original_name=original_name, size_bytes=stored.size, sha256=stored.sha256,
                        params=_params_with_callback(contract, meta), uploaded_by=user, status_url="")


def _params_with_callback(contract: Contract, meta: UploadMetadata) -> dict[str, Any]:
    """The processing parameters plus the checked callback URL, which travels (and is stored) among them."""
    if CALLBACK_PARAM in meta.params:
        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                    f"metadata.params.{CALLBACK_PARAM} is reserved: give metadata.callback_url instead")
    if meta.callback_url is None:
        return meta.params
    settings = contract.callbacks
    try:
        url = check_callback_url(meta.callback_url, feed=contract.name,
                                 allowed_hosts=settings.allowed_hosts if settings else [],
                                 allow_http=bool(settings and settings.allow_http))
    except CallbackRefused as exc:
        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, f"metadata.callback_url: {exc}") from exc
    params = {**meta.params, CALLBACK_PARAM: url}
    if len(json.dumps(params, separators=(",", ":"))) > MAX_PARAMS_BYTES:
        raise _fail(status.HTTP_422_UNPROCESSABLE_CONTENT, f"metadata.params and callback_url together are larger "
                                                           f"than {MAX_PARAMS_BYTES} bytes of JSON (S3 metadata)")
    return params


async def _open_writer(contract: Contract, s3: Any, bucket: str, original_name: str, meta: UploadMetadata,
                       user: str, part_bytes: int) -> S3StreamWriter:
    params = _params_with_callback(contract, meta)
    try:
        return await run_in_threadpool(open_upload, s3, bucket, contract, original_name, params=params,
                                       note=meta.note, user=user, part_bytes=part_bytes)
    except UploadRefused as exc:
        code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise _fail(code, str(exc)) from exc
