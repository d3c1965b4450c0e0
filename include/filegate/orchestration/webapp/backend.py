"""What the Filegate app reads and writes: the status store, the bucket and the feed contracts.

Built once per api-server process from the same Airflow connections the DAGs use (`filegate_db`,
`aws_default`); the first use applies pending status-store migrations, the UI indexes included.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from filegate.contracts import ContractError, get_contract, load_contracts
from filegate.contracts.model import Contract
from filegate.settings import load_settings
from filegate.status.queries import StatusQueries
from filegate.status.store import StatusStore

log = logging.getLogger(__name__)
DEFAULT_UPLOAD_MAX_BYTES = 512 << 20


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    # S3 multipart parts must be ≥ 5 MiB; this bounds the memory an upload holds at once.
    part_bytes: int = 8 << 20

    @classmethod
    def from_env(cls) -> UploadLimits:
        raw = os.environ.get("FILEGATE_UPLOAD_MAX_BYTES")
        return cls(max_bytes=int(raw) if raw else DEFAULT_UPLOAD_MAX_BYTES)


class Backend:
    def __init__(self) -> None:
        self.bucket = load_settings().bucket
        self.limits = UploadLimits.from_env()

    @cached_property
    def store(self) -> StatusStore:
        """The writes the page's actions make (a note in a file's history); reads go through `queries`."""
        from filegate.orchestration.connections import status_store

        return status_store()  # migrates once per process

    @cached_property
    def dsn(self) -> str:
        return self.store.dsn

    @cached_property
    def queries(self) -> StatusQueries:
        return StatusQueries(self.dsn)

    @cached_property
    def s3(self) -> Any:
        from filegate.orchestration.connections import s3_client

        try:
            return s3_client()
        except Exception as exc:  # outside a worker the hook may lack its connection; boto3's env still works
            log.warning("S3Hook unavailable in the api-server (%s); using boto3 defaults", exc)
            from filegate.storage.s3 import s3_client as plain_client

            return plain_client()

    def contracts(self) -> list[Contract]:
        return load_contracts()

    def feed_names(self) -> set[str]:
        """The feeds that have a contract, without parsing them (a contract's name is its file's stem): cheap
        enough for every request that checks which feeds a user may read."""
        return {path.stem for path in load_settings().feeds_dir.glob("*.yaml")}

    def contract(self, feed: str) -> Contract | None:
        try:
            return get_contract(feed)
        except ContractError:
            return None


_backend: Backend | None = None


def get_backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = Backend()
    return _backend


def reset_backend() -> None:
    """Tests point the app at another stack."""
    global _backend
    _backend = None
