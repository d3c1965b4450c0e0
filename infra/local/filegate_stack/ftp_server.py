"""FTP (or explicit FTPS) server over a local folder, for FTP-sourced feeds.

Run: python -m filegate_stack.ftp_server --port 2121 --root DIR --user filegate [--tls]
(password from FILEGATE_FTP_PASSWORD, so it never shows in `ps`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from filegate_stack.tls import ensure_certificate

logger = logging.getLogger(__name__)

# elradfmwMT: list, cwd, retrieve, append, delete, rename, mkdir, store, chmod(M), set mtime(T).
WRITE_PERMS = "elradfmwMT"


def build_server(
    *,
    port: int,
    root: Path,
    user: str,
    password: str,
    passive_ports: tuple[int, int],
    tls: bool,
    tls_dir: Path,
    tls_required: bool = False,
) -> FTPServer:
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm=WRITE_PERMS)
    handler: type[FTPHandler]
    if tls:
        from pyftpdlib.handlers import TLS_FTPHandler

        cert, key = ensure_certificate(tls_dir)

        class LocalTLSHandler(TLS_FTPHandler):
            pass

        LocalTLSHandler.certfile = str(cert)
        LocalTLSHandler.keyfile = str(key)
        # Optional TLS lets one local server serve FTP and FTPS feeds; "required" mimics partners'
        # FTPS-only servers (plaintext login then gets "550 SSL/TLS required").
        LocalTLSHandler.tls_control_required = tls_required
        LocalTLSHandler.tls_data_required = tls_required
        handler = LocalTLSHandler
    else:

        class LocalHandler(FTPHandler):
            pass

        handler = LocalHandler
    handler.authorizer = authorizer
    handler.passive_ports = list(range(passive_ports[0], passive_ports[1] + 1))
    handler.masquerade_address = None
    handler.banner = "Filegate local FTP server ready."
    # Partners' servers often show mtimes in UTC; so do we (MDTM is UTC per RFC 3659 anyway).
    handler.use_gmt_times = True
    # FILEGATE_BIND_HOST=0.0.0.0 only inside a container (docker-compose.yaml); loopback everywhere else.
    server = FTPServer((os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1"), port), handler)
    server.max_cons = 256
    server.max_cons_per_ip = 0
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local FTP/FTPS server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--user", default="filegate")
    parser.add_argument("--passive-ports", default="30000-30049")
    parser.add_argument("--tls", action="store_true", help="offer explicit FTPS (AUTH TLS)")
    parser.add_argument("--tls-required", action="store_true", help="refuse plaintext control/data")
    parser.add_argument("--tls-dir", type=Path, default=Path("tls"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    low, _, high = args.passive_ports.partition("-")
    server = build_server(
        port=args.port,
        root=args.root,
        user=args.user,
        password=os.environ.get("FILEGATE_FTP_PASSWORD", "filegate"),
        passive_ports=(int(low), int(high or low)),
        tls=args.tls or args.tls_required,
        tls_dir=args.tls_dir,
        tls_required=args.tls_required,
    )

    def stop(signum: int, _frame: Any) -> None:
        logger.info("signal %s: closing FTP server", signum)
        server.close_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    logger.info(
        "FTP%s server on 127.0.0.1:%s serving %s", "S" if args.tls or args.tls_required else "", args.port, args.root
    )
    server.serve_forever(handle_exit=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
