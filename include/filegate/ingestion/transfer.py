"""Streams bytes into one S3 object that becomes visible only once it is complete and verified.

Small files (up to one part) are buffered and written with a single PUT, which S3 makes visible atomically.
Larger files go through a multipart upload: parts are uploaded as they fill, and CompleteMultipartUpload is
sent only after the byte count matched what the source announced (an FTP listing; an upload announces
nothing); on any error the upload is aborted, so a reader of raw/ never sees a partial object. Memory stays
at about one part whatever the file size. Used by the FTP pickup and the upload endpoint alike.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from filegate.ingestion.retry import FileStillGrowing, IncompleteTransfer
from filegate.storage.metadata import SHA256

log = logging.getLogger(__name__)
PART_SIZE = 8 << 20  # S3's minimum part is 5 MiB; 8 MiB keeps memory small and part counts low (≤10,000 parts)
PROGRESS_EVERY_PARTS = 16  # a log line every 128 MiB


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    sha256: str
    parts: int


@dataclass
class S3StreamWriter:
    """Write chunks with `write`, then `complete()`; `abort()` (or an exception in a `with` block) discards."""

    s3: Any
    bucket: str
    key: str
    expected_size: int | None  # None: the source announced no size (an upload), so none is checked
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    part_size: int = PART_SIZE
    _buffer: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _digest: Any = field(default_factory=hashlib.sha256, init=False, repr=False)
    _size: int = field(default=0, init=False)
    _upload_id: str | None = field(default=None, init=False)
    _parts: list[dict[str, Any]] = field(default_factory=list, init=False)
    _finished: bool = field(default=False, init=False)

    def __enter__(self) -> S3StreamWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._finished:
            self.abort()

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self.expected_size is not None and self._size > self.expected_size:
            # Stop at once: the file is being appended to, and streaming on could mean streaming forever.
            raise FileStillGrowing(f"{self.key}: more than the {self.expected_size} bytes listed arrived")
        self._digest.update(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self.part_size:
            # Hand the buffer itself to S3 and start a new one with the overflow: no copy of a whole part.
            part, self._buffer = self._buffer, bytearray(self._buffer[self.part_size :])
            del part[self.part_size :]
            self._upload_part(part)

    def _upload_part(self, body: bytes | bytearray) -> None:
        if self._upload_id is None:
            self._upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, Metadata=self.metadata, ContentType=self.content_type
            )["UploadId"]
        number = len(self._parts) + 1
        etag = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                   PartNumber=number, Body=body)["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})
        if number % PROGRESS_EVERY_PARTS == 0:  # a long copy shows progress in the task log
            log.info("s3://%s/%s: %d MiB uploaded so far", self.bucket, self.key, self._size >> 20)

    def complete(self) -> StoredObject:
        """Verifies the size, then makes the object visible. Raises (and discards) on a short transfer."""
        if self.expected_size is not None and self._size != self.expected_size:
            raise IncompleteTransfer(f"{self.key}: received {self._size} of {self.expected_size} bytes")
        sha256 = self._digest.hexdigest()
        if self._upload_id is None:
            # ChecksumSHA256: S3 verifies the bytes against it and keeps it, so registering the object takes the
            # hash from a HeadObject instead of reading the whole object again (storage.s3.sha256_from_head).
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                               ChecksumAlgorithm="SHA256",
                               ChecksumSHA256=base64.b64encode(self._digest.digest()).decode(),
                               Metadata={**self.metadata, SHA256: sha256}, ContentType=self.content_type)
        else:
            if self._buffer:
                self._upload_part(self._buffer)
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                              MultipartUpload={"Parts": self._parts})
        self._buffer.clear()
        self._finished = True
        log.info("stored s3://%s/%s (%d bytes, %d part(s), sha256 %s)", self.bucket, self.key, self._size,
                 max(1, len(self._parts)), sha256[:12])
        return StoredObject(self.bucket, self.key, self._size, sha256, max(1, len(self._parts)))

    def abort(self) -> None:
        self._buffer.clear()
        self._finished = True
        if self._upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            log.info("aborted the partial upload of s3://%s/%s after %d bytes", self.bucket, self.key, self._size)
        except Exception:  # an unaborted upload stays invisible; the bucket's lifecycle rule reaps it
            log.warning("could not abort multipart upload %s of %s", self._upload_id, self.key, exc_info=True)
