"""What the pickup (filegate.ingestion.pickup) needs from a partner's server, whatever the protocol.

FTP/FTPS (filegate.ingestion.ftp) and SFTP (filegate.ingestion.sftp) each implement `RemoteEndpoint` and
`RemoteSession`; the pickup's guarantees (stable size, streamed copy, exactly once, housekeeping, retries) are
written once, against these two interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RemoteFile:
    """One plain file in the watched directory, as the listing saw it."""

    name: str
    path: str
    size: int
    modified: datetime | None

    @property
    def identity(self) -> str:
        """Path, size and time: a file replaced on the server under the same name is a new arrival."""
        stamp = self.modified.strftime("%Y%m%d%H%M%S") if self.modified else "-"
        return f"{self.path}|{self.size}|{stamp}"


def usable_remote_name(name: str) -> bool:
    """Names we will download/rename on the server. A listing entry with a separator could address files outside
    the watched directory (a hostile or buggy server), and CR/LF/NUL cannot travel on an FTP control connection.
    Other odd characters are fine here: the S3 key is sanitised separately (keys.safe_name)."""
    return bool(name) and name not in {".", ".."} and not any(ch in name for ch in "/\r\n\x00")


class RemoteSession(Protocol):
    """One logged-in connection. Not thread-safe; the pickup drops it after any error and opens a new one."""

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def list_files(self, directory: str, pattern: str = "*") -> list[RemoteFile]:
        """Plain files in `directory` whose name matches the glob `pattern` (case-sensitive), sorted by name."""
        ...

    def size(self, path: str) -> int | None:
        """The size of a plain file; None when there is no plain file at `path`."""
        ...

    def retrieve(self, path: str, sink: Callable[[bytes], None]) -> None:
        """Streams the file to `sink` block by block, up to its end; raises when the transfer breaks off."""
        ...

    def ensure_directory(self, path: str) -> None: ...

    def rename(self, source: str, target: str) -> None: ...

    def delete(self, path: str) -> None: ...


class RemoteEndpoint(Protocol):
    """Where and how to connect; built from an Airflow connection by filegate.orchestration."""

    def describe(self) -> str:
        """user@host:port with the protocol, for log lines and failure reasons (never the secret)."""
        ...

    def session(self) -> RemoteSession:
        """A new, not yet connected session."""
        ...

    def refused(self, exc: BaseException) -> bool:
        """The server answered a command on a path with a refusal (no such file, not allowed, exists): the
        connection itself is fine, and asking whether the file is still there tells a vanished file apart."""
        ...
