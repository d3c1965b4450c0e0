"""A small FTP/FTPS client over ftplib that copes with what partners' servers do and do not implement.

Listing prefers MLSD (names, sizes and times in one round trip) and falls back to NLST + SIZE + MDTM when the
server lacks it. SIZE is only reliable in binary mode (pyftpdlib refuses it in ASCII mode) and ftplib's
listings switch the session to ASCII, so TYPE I is sent before every SIZE.
"""

from __future__ import annotations

import fnmatch
import ftplib
import logging
import posixpath
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from filegate.ingestion.remote import RemoteFile, usable_remote_name

log = logging.getLogger(__name__)
BLOCK_SIZE = 1 << 20


@dataclass(frozen=True)
class FtpEndpoint:
    """Where and how to connect; built from an Airflow connection by filegate.orchestration."""

    host: str
    port: int = 21
    user: str = "anonymous"
    password: str = ""
    tls: bool = False
    ca_file: str | None = None
    passive: bool = True
    timeout_s: float = 60.0
    encoding: str = "utf-8"

    def describe(self) -> str:
        return f"{'ftps' if self.tls else 'ftp'}://{self.user}@{self.host}:{self.port}"

    def session(self) -> FtpSession:
        return FtpSession(self)

    def refused(self, exc: BaseException) -> bool:
        return reply_code(exc) == "550"


def reply_code(exc: BaseException) -> str | None:
    """The three-digit FTP reply code carried by an ftplib error, if any."""
    if isinstance(exc, ftplib.Error) and exc.args:
        text = str(exc.args[0])
        if len(text) >= 3 and text[:3].isdigit():
            return text[:3]
    return None


def _parse_mdtm(value: str) -> datetime | None:
    value = value.strip()
    for fmt in ("%Y%m%d%H%M%S.%f", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


class FtpSession:
    """One logged-in control connection. Not thread-safe; reconnect after any transfer error."""

    def __init__(self, endpoint: FtpEndpoint) -> None:
        self.endpoint = endpoint
        self._ftp: ftplib.FTP | None = None
        self.features: set[str] = set()

    def __enter__(self) -> FtpSession:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def ftp(self) -> ftplib.FTP:
        if self._ftp is None:
            self.connect()
        assert self._ftp is not None
        return self._ftp

    def connect(self) -> None:
        ep = self.endpoint
        ftp: ftplib.FTP
        if ep.tls:
            context = ssl.create_default_context(cafile=ep.ca_file) if ep.ca_file else ssl.create_default_context()
            ftp = ftplib.FTP_TLS(context=context, timeout=ep.timeout_s, encoding=ep.encoding)
        else:
            ftp = ftplib.FTP(timeout=ep.timeout_s, encoding=ep.encoding)
        try:
            ftp.connect(ep.host, ep.port)
            ftp.login(ep.user, ep.password)  # FTP_TLS.login sends AUTH TLS first: credentials never go in clear
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.set_pasv(ep.passive)
            ftp.voidcmd("TYPE I")
            self.features = self._read_features(ftp)
        except BaseException:
            self._quietly_close(ftp)
            raise
        self._ftp = ftp
        log.info("connected to %s (features: %s)", ep.describe(), ", ".join(sorted(self.features)) or "none")

    @staticmethod
    def _read_features(ftp: ftplib.FTP) -> set[str]:
        try:
            reply = ftp.sendcmd("FEAT")
        except ftplib.Error:
            return set()
        lines = reply.splitlines()[1:-1]
        return {line.strip().split(" ", 1)[0].upper() for line in lines if line.strip()}

    @staticmethod
    def _quietly_close(ftp: ftplib.FTP) -> None:
        try:
            ftp.close()
        except Exception:  # closing a broken connection must not mask the error that broke it
            log.debug("closing a broken FTP connection failed", exc_info=True)

    def close(self) -> None:
        if self._ftp is None:
            return
        ftp, self._ftp = self._ftp, None
        try:
            ftp.quit()
        except Exception:  # the server may already be gone; we only want the socket released
            self._quietly_close(ftp)

    # -- listing ------------------------------------------------------------------------------------------

    def list_files(self, directory: str, pattern: str = "*") -> list[RemoteFile]:
        """Plain files in `directory` whose name matches the glob `pattern` (case-sensitive), sorted by name."""
        if "MLST" in self.features:
            try:
                return self._list_mlsd(directory, pattern)
            except ftplib.error_perm as exc:
                log.warning("MLSD refused (%s); falling back to NLST + SIZE + MDTM", exc)
        return self._list_nlst(directory, pattern)

    def _list_mlsd(self, directory: str, pattern: str) -> list[RemoteFile]:
        found = []
        for name, facts in self.ftp.mlsd(directory, facts=["type", "size", "modify"]):
            if facts.get("type", "file").lower() != "file" or not fnmatch.fnmatchcase(name, pattern):
                continue
            if not usable_remote_name(name):
                log.warning("skipping remote name %r: it could address files outside %s", name, directory)
                continue
            size = facts.get("size")
            if size is None:
                size_value = self.size(posixpath.join(directory, name))
                if size_value is None:
                    continue
            else:
                size_value = int(size)
            found.append(RemoteFile(name, posixpath.join(directory, name), size_value,
                                    _parse_mdtm(facts["modify"]) if facts.get("modify") else None))
        return sorted(found, key=lambda f: f.name)

    def _list_nlst(self, directory: str, pattern: str) -> list[RemoteFile]:
        try:
            entries = self.ftp.nlst(directory)
        except ftplib.error_perm as exc:
            # Several servers answer NLST of an empty directory with 550 "No files found".
            if reply_code(exc) == "550":
                log.info("NLST %s: %s; treating as empty", directory, exc)
                return []
            raise
        found = []
        for entry in entries:
            name = posixpath.basename(entry.rstrip("/"))
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            if not usable_remote_name(name):
                log.warning("skipping remote name %r: it could address files outside %s", name, directory)
                continue
            path = posixpath.join(directory, name)
            size = self.size(path)
            if size is None:  # a directory or something SIZE cannot describe: not a file to pick up
                continue
            found.append(RemoteFile(name, path, size, self.modified(path)))
        return sorted(found, key=lambda f: f.name)

    def size(self, path: str) -> int | None:
        """SIZE in binary mode; None when the path is not a plain file (550)."""
        # Every ftplib listing (NLST, MLSD) switches the session back to TYPE A, where servers such as pyftpdlib
        # refuse SIZE ("550 SIZE not allowed in ASCII mode"): ask for binary every time, it costs one round trip.
        self.ftp.voidcmd("TYPE I")
        try:
            return self.ftp.size(path)
        except ftplib.error_perm as exc:
            if reply_code(exc) == "550":
                return None
            raise

    def modified(self, path: str) -> datetime | None:
        if self.features and "MDTM" not in self.features:
            return None
        try:
            reply = self.ftp.sendcmd(f"MDTM {path}")
        except ftplib.error_perm:
            return None
        return _parse_mdtm(reply[4:]) if reply.startswith("213") else None

    # -- transfer and housekeeping ------------------------------------------------------------------------

    def retrieve(self, path: str, sink: Callable[[bytes], None], block_size: int = BLOCK_SIZE) -> None:
        """RETR in binary mode, handing each block to `sink`; raises on a transfer that does not end in 226."""
        self.ftp.retrbinary(f"RETR {path}", sink, blocksize=block_size)

    def ensure_directory(self, path: str) -> None:
        try:
            self.ftp.mkd(path)
        except ftplib.error_perm as exc:
            if reply_code(exc) != "550":
                raise
            # 550 on MKD usually means "exists"; prove it rather than assume.
            current = self.ftp.pwd()
            self.ftp.cwd(path)
            self.ftp.cwd(current)

    def rename(self, source: str, target: str) -> None:
        self.ftp.rename(source, target)

    def delete(self, path: str) -> None:
        self.ftp.delete(path)
