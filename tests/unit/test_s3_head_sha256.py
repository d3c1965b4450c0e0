"""Which HeadObject answers give a raw object's sha256 without reading it (storage.s3.sha256_from_head): only a
whole-object SHA-256 that S3 verified. A wrong one would make a new file a `duplicate` of another, unprocessed."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from filegate.storage.s3 import sha256_from_head

BODY = b"id\n1\n"
SHA = hashlib.sha256(BODY).hexdigest()
B64 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()


class Head:
    def __init__(self, **answer: Any) -> None:
        self.answer = {"ContentLength": len(BODY), "ETag": '"abc"', "Metadata": {"k": "v"}, **answer}
        self.asked: dict[str, Any] = {}

    def head_object(self, **params: Any) -> dict[str, Any]:
        self.asked = params
        return self.answer


def test_a_single_put_with_a_sha256_checksum_gives_hash_size_and_metadata_and_asks_for_checksums() -> None:
    client = Head(ChecksumSHA256=B64, ChecksumType="FULL_OBJECT")
    found = sha256_from_head(client, "bkt", "raw/f/k.csv")
    assert (found.sha256, found.size, found.metadata) == (SHA, len(BODY), {"k": "v"})
    assert client.asked["ChecksumMode"] == "ENABLED"
    assert sha256_from_head(Head(ChecksumSHA256=B64), "bkt", "k").sha256 == SHA  # moto names no ChecksumType


def test_composite_multipart_checksums_metadata_and_other_algorithms_are_not_the_file_hash() -> None:
    assert sha256_from_head(Head(ChecksumSHA256=f"{B64}-3", ChecksumType="COMPOSITE"), "bkt", "k") is None
    assert sha256_from_head(Head(ChecksumSHA256=B64, ETag='"abc-3"'), "bkt", "k") is None  # multipart, type unnamed
    assert sha256_from_head(Head(Metadata={"sha256": SHA}), "bkt", "k") is None  # user metadata: nobody checked it
    assert sha256_from_head(Head(ChecksumCRC64NVME="AAAAAAAAAAA="), "bkt", "k") is None
    assert sha256_from_head(Head(ChecksumSHA256="not base64!"), "bkt", "k") is None
