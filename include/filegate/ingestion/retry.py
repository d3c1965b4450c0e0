"""Which pickup errors are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import ftplib
import random
from dataclasses import dataclass

from filegate.ingestion.ftp import reply_code

# RFC 959 transient replies: service closing, can't open data connection, transfer aborted, file busy,
# local error, insufficient storage. Partners' servers send them under load or during their own maintenance.
TRANSIENT_REPLIES = frozenset({"421", "425", "426", "450", "451", "452"})


class FileVanished(RuntimeError):
    """The file was listed but is no longer on the server: someone removed or renamed it in between."""


class FileStillGrowing(RuntimeError):
    """More bytes arrived than the stable listing showed: the writer resumed; pick it up on a later run."""


class HostKeyRefused(RuntimeError):
    """The SSH server's host key is not the one the connection expects (or there is none to compare with).
    Possibly a man in the middle: never accepted, never retried; the reason names the host and fingerprints."""


class IncompleteTransfer(RuntimeError):
    """The transfer ended with fewer bytes than the listing showed (a dropped connection, a truncated read)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per file inside one task try; Airflow's task retries (with their own backoff) come on top."""

    attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter, so a fleet of workers does not hammer a recovering server together."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)


def describe(exc: BaseException) -> str:
    """A reason a person can act on: the server's own reply when there is one, marked transient or not."""
    code = reply_code(exc)
    if code:
        kind = "transient" if code in TRANSIENT_REPLIES else "permanent" if code.startswith("5") else "unexpected"
        return f"FTP {kind} reply {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def retryable(exc: BaseException) -> bool:
    """Worth another attempt: transient replies, dropped connections, timeouts, TLS and SSH errors, S3 errors, and
    permanent 5xx replies too (a partner's permission slip is fixed in minutes as often as not), all within the
    same attempt budget. A vanished or still-growing file, or a wrong host key, is never retried in this run."""
    if isinstance(exc, FileVanished | FileStillGrowing | HostKeyRefused):
        return False
    return isinstance(exc, ftplib.Error | EOFError | OSError | IncompleteTransfer) or _is_client_library_error(exc)


def _is_client_library_error(exc: BaseException) -> bool:
    """S3 client errors, and paramiko's SSHException family (a dropped SSH transport, a failed handshake),
    recognised by module so this module imports neither library."""
    module = type(exc).__module__ or ""
    return module.startswith(("botocore", "boto3", "s3transfer", "urllib3", "paramiko"))
