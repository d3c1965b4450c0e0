"""Where a contract's Postgres destination lives: its own DSN (an env var it names) or the status store's.

Apart from the loader so that readers of the table (the transactions API in the api-server) find the same
database without importing the loader's Arrow."""

from __future__ import annotations

import os

from filegate.contracts.model import PostgresDestination
from filegate.settings import load_settings


def target_dsn(destination: PostgresDestination) -> str:
    """The destination's own DSN (env var named by `dsn_env`), else the status store's."""
    if destination.dsn_env:
        dsn = os.environ.get(destination.dsn_env)
        if not dsn:
            raise RuntimeError(f"destinations.postgres.dsn_env names {destination.dsn_env}, which is not set")
        return dsn
    dsn = load_settings().db_url
    if not dsn:
        raise RuntimeError("destinations.postgres needs a database: set FILEGATE_DB_URL or destinations.postgres"
                           ".dsn_env")
    return dsn


def dsn_source(destination: PostgresDestination) -> str:
    """Where the DSN comes from, for error messages (which never hold the DSN itself)."""
    if destination.dsn_env:
        return f"destinations.postgres.dsn_env ({destination.dsn_env})"
    return "FILEGATE_DB_URL"
