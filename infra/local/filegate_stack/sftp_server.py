"""SFTP server over a local folder (asyncssh), for SFTP-sourced feeds: password and public-key login for one user,
a fixed host key that clients must already know.

Run: python -m filegate_stack.sftp_server --port 2222 --root DIR --user filegate --keys DIR
(password from FILEGATE_SFTP_PASSWORD, so it never shows in `ps`). Tests start `serve` in a thread with an
SFTP server class of their own (e.g. one that drops the connection mid-transfer).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import asyncssh

from filegate_stack.ssh_keys import ensure_ssh_keys

logger = logging.getLogger(__name__)


def _auth_server(user: str, password: str, authorized_keys: Path) -> type[asyncssh.SSHServer]:
    class LocalAuth(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            self._conn = conn

        def begin_auth(self, username: str) -> bool:
            if username == user:  # keys authorize this user only
                self._conn.set_authorized_keys(str(authorized_keys))
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, offered: str) -> bool:
            return username == user and hmac.compare_digest(offered.encode(), password.encode())

    return LocalAuth


async def serve(*, port: int, root: Path, user: str, password: str, keys_dir: Path,
                sftp_server: Callable[..., asyncssh.SFTPServer] = asyncssh.SFTPServer,
                host: str | None = None) -> asyncssh.SSHAcceptor:
    """Starts listening and returns the acceptor (its `sockets` tell the port when `port` is 0)."""
    root.mkdir(parents=True, exist_ok=True)
    keys = ensure_ssh_keys(keys_dir)
    chroot = str(root.resolve())
    return await asyncssh.create_server(
        _auth_server(user, password, keys.authorized_keys),
        # FILEGATE_BIND_HOST=0.0.0.0 only inside a container; loopback everywhere else.
        host or os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1"), port,
        server_host_keys=[str(keys.host_key)],
        sftp_factory=lambda chan: sftp_server(chan, chroot=chroot),
        allow_scp=False, agent_forwarding=False, x11_forwarding=False, allow_pty=False,
        process_factory=None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local SFTP server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--user", default="filegate")
    parser.add_argument("--keys", type=Path, required=True, help="folder of the host and client keys")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    password = os.environ.get("FILEGATE_SFTP_PASSWORD", "filegate")

    async def run() -> None:
        acceptor = await serve(port=args.port, root=args.root, user=args.user, password=password,
                               keys_dir=args.keys)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopped.set)
        logger.info("SFTP server on 127.0.0.1:%s serving %s (host key %s)", args.port, args.root,
                    ensure_ssh_keys(args.keys).host_public)
        await stopped.wait()
        logger.info("closing SFTP server")
        acceptor.close()
        await acceptor.wait_closed()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
