"""The SFTP source without a server: contract keys, host-key parsing and fingerprints, the connection as the SSH
provider defines it (host key required, never unchecked), and which errors the pickup retries."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import paramiko
import pytest
from pydantic import ValidationError

from filegate.contracts.model import Contract
from filegate.ingestion.retry import HostKeyRefused, retryable
from filegate.ingestion.sftp import SftpEndpoint, fingerprint, load_private_key, parse_host_key
from filegate.orchestration.connections import sftp_endpoint


def host_key_line() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return public.decode(), pem.decode()


def feed(**source: object) -> Contract:
    return Contract.model_validate({"name": "partner", "description": "d", "source": source})


def test_contract_needs_an_sftp_block_and_exposes_it_as_the_server_directory() -> None:
    with pytest.raises(ValidationError, match=r"source\.kind sftp needs a source\.sftp block"):
        feed(kind="sftp")
    contract = feed(kind="sftp", pattern="*.csv", sftp={"directory": "/out", "after_download": "delete"})
    assert contract.source.remote is contract.source.sftp
    assert (contract.source.sftp.conn_id, contract.source.sftp.stable_seconds) == ("filegate_sftp", 10)
    assert feed(kind="s3").source.remote is None
    with pytest.raises(ValidationError):
        feed(kind="sftp", sftp={"directory": "/out", "tls": True})  # an FTP-only key is a mistake, not ignored


def test_host_key_forms_and_fingerprint(tmp_path) -> None:
    public, _ = host_key_line()
    key_type = public.split()[0]
    expected = parse_host_key(public)
    assert expected.get_name() == "ssh-ed25519"
    for form in (f"{public} partner@example", f"[sftp.partner.example]:2222 {public}", f"host,10.0.0.1 {public}"):
        assert parse_host_key(form).asbytes() == expected.asbytes()
    text = fingerprint(expected)
    assert text.startswith("SHA256:") and len(text) == 7 + 43 and not text.endswith("=")
    if shutil.which("ssh-keygen"):  # the form partners quote: `ssh-keygen -lf <key>`
        (tmp_path / "key.pub").write_text(public + "\n")
        listed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "key.pub")], capture_output=True, text=True)
        assert listed.stdout.split()[1] == text
    with pytest.raises(ValueError, match="cannot read the host key"):
        parse_host_key(f"{key_type} not-base64!")
    with pytest.raises(ValueError, match=r"expected e\.g\."):
        parse_host_key("just some words")


def test_private_key_text_is_loaded_or_explained() -> None:
    _, pem = host_key_line()
    assert load_private_key(pem, None).get_name() == "ssh-ed25519"
    with pytest.raises(ValueError, match="not an Ed25519, ECDSA or RSA key"):
        load_private_key("-----BEGIN NONSENSE-----\nAAAA\n-----END NONSENSE-----\n", None)


def test_refusals_and_retries() -> None:
    endpoint = SftpEndpoint(host="h", host_key="x", user="u", password="secret-pw", private_key="secret-key")
    assert "secret" not in repr(endpoint) and endpoint.describe() == "sftp://u@h:22"
    assert endpoint.known_hosts_name == "h" and SftpEndpoint(host="h", host_key="x", port=2222).known_hosts_name \
        == "[h]:2222"
    assert endpoint.refused(FileNotFoundError(2, "No such file")) and endpoint.refused(OSError("Failure"))
    assert not endpoint.refused(ConnectionResetError(104, "reset")) and not endpoint.refused(EOFError())
    assert not retryable(HostKeyRefused("changed key"))
    assert retryable(paramiko.SSHException("Server connection dropped")) and retryable(EOFError())
    assert retryable(paramiko.AuthenticationException("Authentication failed."))


def connection(monkeypatch, **extra: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_SFTP", json.dumps({
        "conn_type": "sftp", "host": "sftp.partner.example", "port": 2222, "login": "filegate",
        "password": "pw-123456", "extra": extra}))


def test_connection_needs_a_checked_host_key(monkeypatch) -> None:
    public, pem = host_key_line()
    connection(monkeypatch)
    with pytest.raises(RuntimeError, match=r"no host_key extra.*never accepts an unknown host key"):
        sftp_endpoint("partner_sftp")
    connection(monkeypatch, host_key=public, no_host_key_check=True)
    with pytest.raises(RuntimeError, match="always verifies the host key"):
        sftp_endpoint("partner_sftp")
    connection(monkeypatch, host_key=public, no_host_key_check=False, private_key=pem, conn_timeout=7)
    endpoint = sftp_endpoint("partner_sftp")
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.timeout_s) == ("sftp.partner.example", 2222,
                                                                                 "filegate", 7.0)
    assert endpoint.host_key == public and endpoint.private_key == pem and endpoint.conn_id == "partner_sftp"
    from airflow.sdk._shared.secrets_masker import redact

    assert "pw-123456" not in redact("login with pw-123456")  # registered with Airflow's log masker


class FakeSftpClient:
    """SFTPClient's request/reply primitives over a byte string: replies can be short, and come in any order."""

    def __init__(self, body: bytes, reply_cap: int, reorder: bool = True) -> None:
        self.body, self.cap, self.reorder = body, reply_cap, reorder
        self.waiting: list[tuple[Any, int, int, int]] = []
        self.number = 0
        self.most_in_flight = 0

    def _async_request(self, owner: Any, kind: int, handle: bytes, offset: int, length: int) -> int:
        self.number += 1
        self.waiting.append((owner, self.number, int(offset), int(length)))
        self.most_in_flight = max(self.most_in_flight, len(self.waiting))
        return self.number

    def _read_response(self) -> None:
        from paramiko.message import Message
        from paramiko.sftp import CMD_DATA, CMD_STATUS, SFTP_EOF

        owner, number, offset, length = self.waiting.pop(-1 if self.reorder else 0)
        message = Message()
        if offset >= len(self.body):
            message.add_int(SFTP_EOF)
            message.add_string("end of file")
            message.rewind()
            owner._async_response(CMD_STATUS, message, number)
            return
        message.add_string(self.body[offset : offset + min(length, self.cap)])
        message.rewind()
        owner._async_response(CMD_DATA, message, number)

    def _convert_status(self, message: Any) -> None:
        raise EOFError(message.get_text())


@pytest.mark.parametrize("reply_cap", [32 << 10, 10_000], ids=["full-replies", "short-replies"])
def test_pipelined_read_keeps_order_bounds_requests_and_completes_short_replies(reply_cap: int) -> None:
    from filegate.ingestion.sftp import PIPELINE_DEPTH, _PipelinedRead

    body = bytes(range(256)) * 20_000  # 5 MB, not a multiple of the request size
    client = FakeSftpClient(body, reply_cap)
    assert b"".join(_PipelinedRead(client, b"h", len(body)).blocks()) == body
    assert client.most_in_flight <= PIPELINE_DEPTH
    # The file shrank after it was opened: the read ends short instead of failing (the size check catches it).
    shrunk = FakeSftpClient(body[:100_000], reply_cap, reorder=False)
    assert b"".join(_PipelinedRead(shrunk, b"h", len(body)).blocks()) == body[:100_000]
