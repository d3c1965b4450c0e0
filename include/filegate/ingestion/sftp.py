"""A small SFTP client over paramiko, with the host key pinned: the pickup's other protocol besides FTP/FTPS.

The server's host key must be the one the connection names (the SSH provider's `host_key` extra): an unknown or
different key is refused with both fingerprints, never accepted. Key and password authentication as the
connection gives them; no agent, no ~/.ssh files, so a worker's own keys never leak into a partner session.

Reads are pipelined: up to PIPELINE_DEPTH read requests in flight (throughput on long links), replies handed on
in order as they come, so at most about PIPELINE_DEPTH * REQUEST_SIZE bytes are held whatever the file size.
paramiko's own `prefetch` buffers everything the network delivers faster than S3 accepts, and its `readv`
falls back to one synchronous request at a time when its prefetch thread lags (leaving the prefetched data
behind): both measured here, both unbounded or slow. The pipeline uses SFTPClient's request/response primitives
(`_async_request`, `_read_response`), which paramiko's own prefetch is built on; paramiko is pinned (MWAA).
"""

from __future__ import annotations

import base64
import errno
import fnmatch
import hashlib
import io
import logging
import posixpath
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from filegate.ingestion.remote import RemoteFile, usable_remote_name
from filegate.ingestion.retry import HostKeyRefused

log = logging.getLogger(__name__)
REQUEST_SIZE = 32 << 10  # SFTP servers commonly cap a read reply at 32 KiB (paramiko's MAX_REQUEST_SIZE)
PIPELINE_DEPTH = 64  # requests in flight: 2 MiB, paramiko's default SSH channel window
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")
KEEPALIVE_S = 30  # long copies: keep NAT gateways and partners' idle timers from cutting the session


def fingerprint(key: Any) -> str:
    """OpenSSH's form, `SHA256:<base64>`, as `ssh-keygen -lf` prints it and partners quote it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_host_key(text: str) -> Any:
    """A paramiko key from a known-hosts style entry: `ssh-ed25519 AAAA… [comment]`, optionally preceded by host
    names (a known_hosts line); a bare base64 blob is read as ssh-rsa, as the SSH provider does."""
    fields = text.split()
    for position, word in enumerate(fields[:-1]):
        if word.startswith(KEY_TYPE_PREFIXES):
            return _key_from(word, fields[position + 1])
    if len(fields) == 1:
        return _key_from("ssh-rsa", fields[0])
    raise ValueError(f"cannot read the host key {text[:40]!r}: expected e.g. 'ssh-ed25519 AAAAC3Nza…'")


def _key_from(key_type: str, blob: str) -> Any:
    import paramiko

    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    except Exception as exc:
        raise ValueError(f"cannot read the host key {key_type} {blob[:16]}…: {exc}") from exc


def load_private_key(text: str, passphrase: str | None) -> Any:
    """The client key from its PEM/OpenSSH text (the SSH provider's `private_key` extra)."""
    import paramiko

    problems = []
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException as exc:
            raise ValueError("the private key is encrypted; put its passphrase in the connection's "
                             "private_key_passphrase extra") from exc
        except paramiko.SSHException as exc:
            problems.append(f"{key_class.__name__}: {exc}")
    raise ValueError("the private key is not an Ed25519, ECDSA or RSA key in PEM/OpenSSH form (" +
                     "; ".join(problems) + ")")


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to connect; built from an Airflow SSH/SFTP connection by filegate.orchestration."""

    host: str
    host_key: str = field(repr=False)  # the expected server key, known_hosts style; required, never learned
    port: int = 22
    user: str = ""
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    conn_id: str | None = None  # named in failure reasons, so an operator knows which connection to fix

    def describe(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}"

    def session(self) -> SftpSession:
        return SftpSession(self)

    def refused(self, exc: BaseException) -> bool:
        # paramiko turns SFTP status replies into OSError: ENOENT, EACCES, or no errno for the generic FAILURE
        # (what a server says to a rename onto an existing name). Socket errors always carry an errno.
        if isinstance(exc, FileNotFoundError | PermissionError):
            return True
        return type(exc) is OSError and exc.errno is None

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts (and paramiko) name a host on a port other than 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _host_key_refused(endpoint: SftpEndpoint, offered: Any, expected: Any) -> HostKeyRefused:
    where = f" by the connection {endpoint.conn_id!r}" if endpoint.conn_id else ""
    return HostKeyRefused(
        f"host key verification failed for {endpoint.known_hosts_name} ({endpoint.describe()}): the server "
        f"offered {offered.get_name()} {fingerprint(offered)}, but the key expected{where} is "
        f"{expected.get_name()} {fingerprint(expected)}. Refusing to connect: the server's key changed or "
        "something is in between. If the partner confirms a new key, put it in the connection's host_key extra.")


class _RefuseUnknownKey:
    """paramiko's MissingHostKeyPolicy for a server that offers no key of the expected type: refuse, and say
    which key it offered."""

    def __init__(self, endpoint: SftpEndpoint, expected: Any) -> None:
        self.endpoint, self.expected = endpoint, expected

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise _host_key_refused(self.endpoint, key, self.expected)


class SftpSession:
    """One authenticated SSH connection with its SFTP channel. Not thread-safe; reconnect after any error."""

    def __init__(self, endpoint: SftpEndpoint) -> None:
        self.endpoint = endpoint
        self._client: Any = None
        self._sftp: Any = None

    def __enter__(self) -> SftpSession:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def sftp(self) -> Any:
        if self._sftp is None:
            self.connect()
        return self._sftp

    def connect(self) -> None:
        import paramiko

        ep = self.endpoint
        expected = parse_host_key(ep.host_key)
        pkey = load_private_key(ep.private_key, ep.key_passphrase) if ep.private_key else None
        if pkey is None and not ep.password:
            raise ValueError(f"{ep.describe()}: the connection has neither a private key nor a password")
        client = paramiko.SSHClient()
        # Only the pinned key is known (paramiko then asks the server for that key type first); nothing is
        # loaded from ~/.ssh/known_hosts and nothing is ever saved.
        client.get_host_keys().add(ep.known_hosts_name, expected.get_name(), expected)
        client.set_missing_host_key_policy(_RefuseUnknownKey(ep, expected))
        try:
            client.connect(ep.host, port=ep.port, username=ep.user, password=ep.password or None, pkey=pkey,
                           timeout=ep.timeout_s, banner_timeout=ep.timeout_s, auth_timeout=ep.timeout_s,
                           channel_timeout=ep.timeout_s, look_for_keys=False, allow_agent=False)
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(KEEPALIVE_S)
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(ep.timeout_s)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise _host_key_refused(ep, exc.key, exc.expected_key) from None
        except BaseException:
            client.close()
            raise
        self._client, self._sftp = client, sftp
        log.info("connected to %s (host key %s %s verified)", ep.describe(), expected.get_name(),
                 fingerprint(expected))

    def close(self) -> None:
        client, self._client, self._sftp = self._client, None, None
        if client is None:
            return
        try:
            client.close()
        except Exception:  # closing a broken connection must not mask the error that broke it
            log.debug("closing a broken SSH connection failed", exc_info=True)

    # -- listing ------------------------------------------------------------------------------------------

    def list_files(self, directory: str, pattern: str = "*") -> list[RemoteFile]:
        try:
            entries = self.sftp.listdir_attr(directory)
        except FileNotFoundError:
            # As with FTP (where servers answer 550 for an empty directory too): nothing to pick up, said loudly.
            # A partner that never delivers is what the feed's `expect:` slots and their alerts are for.
            log.warning("%s does not exist on %s: nothing to pick up", directory, self.endpoint.describe())
            return []
        found = []
        for entry in entries:
            name = entry.filename
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            if not usable_remote_name(name):
                log.warning("skipping remote name %r: it could address files outside %s", name, directory)
                continue
            path = posixpath.join(directory, name)
            # READDIR attributes are lstat's: a symlink (or a server that omits the mode) is asked again.
            mode, size, mtime = entry.st_mode, entry.st_size, entry.st_mtime
            if mode is None or stat.S_ISLNK(mode):
                try:
                    target = self.sftp.stat(path)
                except FileNotFoundError:
                    continue  # a dangling link
                mode, size, mtime = target.st_mode, target.st_size, target.st_mtime
            if mode is None or not stat.S_ISREG(mode) or size is None:
                continue
            found.append(RemoteFile(name, path, int(size),
                                    datetime.fromtimestamp(mtime, UTC) if mtime is not None else None))
        return sorted(found, key=lambda f: f.name)

    def size(self, path: str) -> int | None:
        try:
            attributes = self.sftp.stat(path)
        except FileNotFoundError:
            return None
        if attributes.st_mode is not None and not stat.S_ISREG(attributes.st_mode):
            return None
        return int(attributes.st_size) if attributes.st_size is not None else None

    # -- transfer and housekeeping ------------------------------------------------------------------------

    def retrieve(self, path: str, sink: Callable[[bytes], None]) -> None:
        """Streams the file as it is when opened. A file that grew since the listing hands the sink more than the
        listing announced (the writer refuses it); one that shrinks ends short (the writer's size check fails)."""
        with self.sftp.open(path, "rb") as handle:
            total = handle.stat().st_size or 0
            for block in _PipelinedRead(self.sftp, handle.handle, total).blocks():
                sink(block)

    def ensure_directory(self, path: str) -> None:
        try:
            self.sftp.mkdir(path)
        except OSError:
            # Most servers answer a generic FAILURE for "exists": prove it is a directory rather than assume.
            try:
                mode = self.sftp.stat(path).st_mode
            except FileNotFoundError:
                raise OSError(errno.ENOENT, f"could not create {path}") from None
            if mode is None or not stat.S_ISDIR(mode):
                raise

    def rename(self, source: str, target: str) -> None:
        # Plain SFTP rename never overwrites (unlike posix-rename): an archived file of the same name is kept,
        # and the pickup stamps the newcomer's name instead.
        self.sftp.rename(source, target)

    def delete(self, path: str) -> None:
        self.sftp.remove(path)


class _PipelinedRead:
    """READ requests for [0, total) on an open handle, PIPELINE_DEPTH in flight, replies yielded in file order.
    paramiko's SFTPClient hands each asynchronous reply to the object that asked (`_async_response`)."""

    def __init__(self, client: Any, handle: bytes, total: int) -> None:
        self.client, self.handle, self.total = client, handle, total
        self.replies: dict[int, tuple[int, Any]] = {}

    def _async_response(self, kind: int, message: Any, number: int) -> None:
        self.replies[number] = (kind, message)

    def _request(self, offset: int, length: int) -> int:
        from paramiko.sftp import CMD_READ, int64

        return int(self.client._async_request(self, CMD_READ, self.handle, int64(offset), int(length)))

    def _reply(self, number: int) -> bytes | None:
        """The data of reply `number`, or None at end of file."""
        from paramiko.sftp import CMD_DATA, CMD_STATUS, SFTPError

        while number not in self.replies:
            self.client._read_response()
        kind, message = self.replies.pop(number)
        if kind == CMD_STATUS:
            try:
                self.client._convert_status(message)  # raises: EOFError at the end, OSError for a refusal
            except EOFError:
                return None
        if kind != CMD_DATA:
            raise SFTPError(f"expected data in reply to a read, got packet type {kind}")
        return bytes(message.get_binary())

    def blocks(self) -> Iterator[bytes]:
        in_flight: deque[tuple[int, int, int]] = deque()  # (request number, offset, length)
        offset = 0
        while offset < self.total or in_flight:
            while offset < self.total and len(in_flight) < PIPELINE_DEPTH:
                length = min(REQUEST_SIZE, self.total - offset)
                in_flight.append((self._request(offset, length), offset, length))
                offset += length
            number, at, length = in_flight.popleft()
            data = self._reply(number)
            if data is None:  # truncated on the server since it was opened
                return
            yield data
            # A server may answer a read with fewer bytes than asked: fetch the rest before moving on.
            while len(data) < length:
                at, length = at + len(data), length - len(data)
                data = self._reply(self._request(at, length))
                if data is None:
                    return
                yield data
