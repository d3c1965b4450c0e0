"""Embedded PostgreSQL from the pgserver wheel: socket-only, databases `filegate` and `airflow`.

pgserver.get_server() runs initdb/pg_ctl and can take seconds; a short helper subprocess (this module's
__main__) does it so the postmaster belongs to a detached session and outlives whoever ran `start`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

from filegate_stack.component import Component, StackContext
from filegate_stack.procs import PidRecord, log_tail, read_pid, stop_process, write_pid

logger = logging.getLogger(__name__)

DATABASES = ("filegate", "airflow")


def status_store_url(socket_dir: str, database: str = "filegate") -> str:
    """psycopg 3 / libpq URL; the socket directory goes in host= because there is no TCP listener."""
    return f"postgresql://postgres@/{database}?host={urllib.parse.quote(socket_dir, safe='/')}"


def airflow_metadata_url(socket_dir: str) -> str:
    return f"postgresql+psycopg2://postgres@/airflow?host={urllib.parse.quote(socket_dir, safe='/')}"


def _socket_dir_from_uri(uri: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    return query["host"][0]


def ensure_server(pgdata: Path) -> dict[str, object]:
    """Start (or find) the server and create the databases; runs in the helper subprocess."""
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: without it pgserver stops the server from an atexit hook when we exit.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    for database in DATABASES:
        found = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(0 rows)" in found:
            server.psql(f"CREATE DATABASE {database};")
    uri = server.get_uri()
    return {"pid": server.get_pid(), "socket_dir": _socket_dir_from_uri(uri), "uri": uri}


class PostgresComponent(Component):
    name = "postgres"
    processes = ("postgres",)

    def start(self, ctx: StackContext) -> None:
        info_path = ctx.paths.stack / "postgres.json"
        info_path.unlink(missing_ok=True)
        log_path = ctx.paths.log_file("postgres")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            helper = subprocess.run(
                [
                    ctx.python(),
                    "-m",
                    "filegate_stack.postgres",
                    "--pgdata",
                    str(ctx.paths.pgdata),
                    "--info",
                    str(info_path),
                ],
                env=ctx.base_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                timeout=ctx.config.startup_timeout,
                check=False,
            )
        if helper.returncode != 0 or not info_path.exists():
            pg_log = log_tail(ctx.paths.pgdata / "log")
            raise RuntimeError(f"postgres helper failed (rc={helper.returncode}); server log:\n{pg_log}")
        info = json.loads(info_path.read_text())
        write_pid(ctx.paths.pid_file("postgres"), int(info["pid"]))
        ctx.state["postgres"] = {"socket_dir": info["socket_dir"], "pid": info["pid"]}

    def stop(self, ctx: StackContext) -> list[int]:
        path = ctx.paths.pid_file("postgres")
        record: PidRecord | None = read_pid(path)
        leftovers: list[int] = []
        if record is not None:
            # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
            leftovers = stop_process(record, sig=signal.SIGINT, timeout=30)
        path.unlink(missing_ok=True)
        return leftovers

    def urls(self, ctx: StackContext) -> dict[str, str]:
        socket_dir = socket_dir_of(ctx)
        return {
            "status_store": ctx.config.db_url or status_store_url(socket_dir),
            "airflow_metadata": ctx.config.airflow_db_url or airflow_metadata_url(socket_dir),
        }


def socket_dir_of(ctx: StackContext) -> str:
    return str(ctx.state.get("postgres", {}).get("socket_dir") or ctx.paths.pgdata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="start the embedded PostgreSQL and exit")
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument("--info", type=Path, required=True, help="where to write pid/socket JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    info = ensure_server(args.pgdata)
    args.info.write_text(json.dumps(info))
    logger.info("postgres ready: pid %s socket %s", info["pid"], info["socket_dir"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
