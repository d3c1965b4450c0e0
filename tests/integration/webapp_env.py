"""The Airflow api-server app, in-process, with the Filegate plugin mounted and users of two roles, for tests.

Airflow reads most settings from the environment on each access, but the plugin folder and the loaded plugins
are fixed at import: the fixture points them at this repository's plugins/ and clears Airflow's caches.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
USERS = {"admin": ("admin", "admin-pw"), "viewer": ("viewer", "viewer-pw"), "operator": ("op", "operator-pw")}


@contextmanager
def airflow_app(stack_env: dict[str, str], home: Path, **extra_env: str) -> Iterator[Any]:
    db_url = f"sqlite:///{home}/airflow.db"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
    env = {
        **stack_env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{role}" for n, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8080",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        **extra_env,
    }
    # Token checks read the metadata database (revoked tokens), so the app needs a migrated one.
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=300)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        from airflow import plugins_manager, settings
        from airflow.api_fastapi import app as airflow_app_module

        from filegate.orchestration.webapp.backend import reset_backend

        mp.setattr(settings, "PLUGINS_FOLDER", str(ROOT / "plugins"))
        mp.setattr(settings, "SQL_ALCHEMY_CONN", db_url)
        mp.setattr(settings, "SQL_ALCHEMY_CONN_ASYNC", settings._get_async_conn_uri_from_sync(sync_uri=db_url))
        settings.configure_orm()
        for cached in ("_get_plugins", "_get_ui_plugins", "get_fastapi_plugins", "get_flask_plugins"):
            getattr(plugins_manager, cached).cache_clear()
        airflow_app_module.purge_cached_app()
        reset_backend()
        try:
            yield airflow_app_module.create_app()
        finally:
            settings.dispose_orm()
            reset_backend()
            for cached in ("_get_plugins", "_get_ui_plugins", "get_fastapi_plugins", "get_flask_plugins"):
                getattr(plugins_manager, cached).cache_clear()
            airflow_app_module.purge_cached_app()
    settings.configure_orm()  # back to this process's own metadata database


def token(client: Any, user: str) -> str:
    response = client.post("/auth/token", json={"username": user, "password": USERS[user][1]})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def seed_file(store: Any, actor: Any, *, feed: str, raw_key: str, name: str, sha256: str, size_bytes: int,
              target: Any, rows: tuple[int, int], latency_ms: float, outputs: dict[str, Any] | None = None,
              error: str | None = None) -> int:
    """One file through the real lifecycle to `target`; a processed one gets a quality result (`rows`: total,
    valid) and an acknowledged API call."""
    from filegate.status.lifecycle import Status

    reg = store.register(feed=feed, source="s3", raw_key=raw_key, name=name, sha256=sha256, size_bytes=size_bytes,
                         actor=actor)
    store.queue([reg.file_id], actor)
    store.claim(actor, feed=feed, file_ids=[reg.file_id])
    if target == Status.PROCESSED:
        total, valid = rows
        store.record_quality(reg.file_id, rows_total=total, rows_valid=valid, rows_rejected=total - valid,
                             inferred_schema={}, column_stats={},
                             issues=[{"column": "sku", "rule": "regex", "count": total - valid}])
        store.record_api_call(file_id=reg.file_id, batch_no=0, idempotency_key=f"k-{feed}-{reg.file_id}",
                              url="http://stub/v1/x", records=valid, attempt=1, status_code=200,
                              latency_ms=latency_ms, acknowledged=True)
    store.transition(reg.file_id, target, actor, outputs=outputs, error=error)
    return int(reg.file_id)
