"""SSH keys of the local SFTP server: its host key (pinned in the Airflow connection, as a partner's would be)
and a client key pair for key authentication. Generated once per stack home, Ed25519, OpenSSH format."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SshKeys:
    host_key: Path  # the server's private host key
    host_public: str  # "ssh-ed25519 AAAA…": what the connection's host_key extra carries
    client_key: Path  # the client's private key (the connection's private_key extra)
    authorized_keys: Path  # the server accepts the client key listed here

    @property
    def client_private_text(self) -> str:
        return self.client_key.read_text()


def _ensure_pair(private_path: Path, comment: str) -> str:
    public_path = private_path.with_suffix(".pub")
    if not (private_path.exists() and public_path.exists()):
        key = ed25519.Ed25519PrivateKey.generate()
        private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                   serialization.NoEncryption()))
        private_path.chmod(0o600)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        public_path.write_text(f"{public.decode()} {comment}\n")
        logger.info("generated SSH key %s", private_path)
    return public_path.read_text().strip()


def ensure_ssh_keys(folder: Path) -> SshKeys:
    folder.mkdir(parents=True, exist_ok=True)
    host_public = _ensure_pair(folder / "host_ed25519", "filegate-local-sftp-host")
    client_public = _ensure_pair(folder / "client_ed25519", "filegate-local-sftp-client")
    authorized = folder / "authorized_keys"
    authorized.write_text(client_public + "\n")
    return SshKeys(folder / "host_ed25519", " ".join(host_public.split()[:2]), folder / "client_ed25519",
                   authorized)
