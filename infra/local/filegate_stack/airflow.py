"""Airflow 3.3.1 as separate components on loopback (not `airflow standalone`, whose log servers bind
0.0.0.0): db migrate, then api-server, scheduler, dag-processor, triggerer, metadata in embedded Postgres.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet

from filegate_stack.client_env import client_env
from filegate_stack.component import Component, StackContext
from filegate_stack.procs import log_tail, venv_bin, wait_until

logger = logging.getLogger(__name__)

HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def airflow_url(ctx: StackContext) -> str:
    return f"http://127.0.0.1:{ctx.ports.airflow}"


def _secrets(ctx: StackContext) -> dict[str, str]:
    """Generated once per FILEGATE_HOME so restarts keep JWTs and encrypted connections valid."""
    path = ctx.paths.airflow_home / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {"jwt_secret": secrets.token_urlsafe(32), "fernet_key": Fernet.generate_key().decode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return data


def airflow_env(ctx: StackContext) -> dict[str, str]:
    """Airflow settings + the connections/library env; also what stack.env exports for the CLI."""
    url = airflow_url(ctx)
    keys = _secrets(ctx)
    dags = ctx.config.dags_folder or ctx.repo / "dags"
    env = client_env(ctx)
    env.update(
        {
            "AIRFLOW_HOME": str(ctx.paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ctx.repo / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": env["FILEGATE_AIRFLOW_DB_URL"],
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ctx.ports.airflow),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ctx.config.airflow_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_passwords_file(ctx)),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            # daily_report catches up every day since its start date: locally, the last week is enough.
            "FILEGATE_REPORT_START_DATE": os.environ.get(
                "FILEGATE_REPORT_START_DATE", (datetime.now(UTC).date() - timedelta(days=7)).isoformat()),
        }
    )
    return env


def _passwords_file(ctx: StackContext) -> Any:
    return ctx.paths.airflow_home / "simple_auth_manager_passwords.json.generated"


def _write_password(ctx: StackContext) -> None:
    # SimpleAuthManager only generates passwords for users missing from this file, so a known
    # password written beforehand makes the UI login predictable.
    _passwords_file(ctx).write_text(json.dumps({ctx.config.airflow_user: ctx.config.airflow_password}) + "\n")


def health(ctx: StackContext) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{airflow_url(ctx)}/api/v2/monitor/health", timeout=3) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (OSError, ValueError):
        return None


def _healthy(ctx: StackContext) -> bool:
    data = health(ctx)
    if data is None:
        return False
    return all((data.get(part) or {}).get("status") == "healthy" for part in HEALTH_PARTS)


def login_token(ctx: StackContext, password: str | None = None) -> str:
    """POST /auth/token with the UI credentials; proves the login the user is told to use works."""
    body = json.dumps(
        {"username": ctx.config.airflow_user, "password": password or ctx.config.airflow_password}
    ).encode()
    request = urllib.request.Request(
        f"{airflow_url(ctx)}/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        token: str = json.loads(resp.read())["access_token"]
        return token


class AirflowComponent(Component):
    name = "airflow"
    processes = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")

    def start(self, ctx: StackContext) -> None:
        ctx.paths.airflow_home.mkdir(parents=True, exist_ok=True)
        env = {**ctx.base_env(), **airflow_env(ctx)}
        _write_password(ctx)
        airflow = venv_bin("airflow")
        migrate_log = ctx.paths.log_file("airflow-db-migrate")
        with open(migrate_log, "ab") as log:
            done = subprocess.run(
                [airflow, "db", "migrate"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
                cwd=ctx.paths.home,
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{log_tail(migrate_log)}")
        records = {name: self.launch(ctx, name, argv, env) for name, argv in _commands(ctx).items()}

        def all_healthy() -> bool:
            for name, record in records.items():
                if not record.alive():
                    raise RuntimeError(f"{name} exited:\n{log_tail(ctx.paths.log_file(name))}")
            return _healthy(ctx)

        wait_until(all_healthy, timeout=max(ctx.config.startup_timeout, 180), what="airflow", interval=1.0)
        try:
            login_token(ctx)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"airflow is up but the admin login failed: HTTP {exc.code}") from exc

    def relaunch(self, ctx: StackContext, process: str) -> None:
        """Starts one of the Airflow processes again (after it died), as `start` launched it."""
        self.launch(ctx, process, _commands(ctx)[process], {**ctx.base_env(), **airflow_env(ctx)})

    def urls(self, ctx: StackContext) -> dict[str, str]:
        return {"ui": airflow_url(ctx)}


def _commands(ctx: StackContext) -> dict[str, list[str]]:
    airflow = venv_bin("airflow")
    return {
        "airflow-api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(ctx.ports.airflow)],
        # --skip-serve-logs: the log server would bind 0.0.0.0; the api-server reads local log files.
        "airflow-scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [airflow, "dag-processor"],
        "airflow-triggerer": [airflow, "triggerer", "--skip-serve-logs"],
    }
