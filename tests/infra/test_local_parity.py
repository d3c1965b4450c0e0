"""Docker cannot run here, so the container files are checked structurally against what the code expects:
services, ports, mounts, environment and connection ids of docker-compose.yaml, docker-compose.override.yml,
airflow_settings.yaml (the Astro Dockerfile and .astro/ are checked in test_astro_project.py). The compose entry
point itself is run for real (without Docker)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from filegate.contracts import load_contracts
from filegate.orchestration.connections import AWS_CONN_ID, DB_CONN_ID
from filegate_stack.aws_resources import ACCOUNT_ID, ALERT_TOPIC, REGION

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
ASTRO_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")
SUPPORT_SERVICES = ("moto", "aws-init", "lambda", "ftp", "sftp", "stub-api", "lineage")
# client_env keys that only make sense on the developer's machine (paths, generated secrets).
MACHINE_LOCAL = {"FILEGATE_HOME", "FILEGATE_FTP_CA_FILE", "FILEGATE_AIRFLOW_DB_URL", "FILEGATE_STUB_API_TOKEN"}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def _client_env_keys() -> set[str]:
    source = (ROOT / "infra" / "local" / "filegate_stack" / "client_env.py").read_text()
    return set(re.findall(r'"((?:FILEGATE|AWS|AIRFLOW_CONN)_[A-Z_]+)"', source)) - MACHINE_LOCAL


def _conn_ids() -> set[str]:
    ids = {AWS_CONN_ID, DB_CONN_ID, "filegate_api", "filegate_ftp", "filegate_sftp"}
    for contract in load_contracts():
        if contract.destinations.api:
            ids.add(contract.destinations.api.conn_id)
        if contract.source.remote:
            ids.add(contract.source.remote.conn_id)
    return ids


def _published(service: dict[str, Any]) -> set[int]:
    ports = set()
    for mapping in service.get("ports", []):
        _, _, container = str(mapping).partition(":")
        if "-" not in container:
            ports.add(int(container))
    return ports


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yaml")


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", *SUPPORT_SERVICES, "airflow-init", *AIRFLOW_SERVICES}
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")


def test_airflow_containers_get_every_setting_and_connection_the_code_reads(compose: dict[str, Any]) -> None:
    expected = _client_env_keys() | {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in _conn_ids()}
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert expected <= set(env), f"{name} lacks {sorted(expected - set(env))}"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/filegate/dags"
        assert "./:/opt/filegate" in compose["services"][name]["volumes"]
        from cryptography.fernet import Fernet

        Fernet(env["AIRFLOW__CORE__FERNET_KEY"].encode())


def test_endpoints_in_the_environment_point_at_the_services_that_listen_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["airflow-scheduler"]["environment"]

    def target(url: str) -> tuple[str, int]:
        parts = urllib.parse.urlsplit(url)
        return parts.hostname or "", parts.port or 0

    def listens(host: str, port: int) -> bool:
        return host in services and port in _published(services[host])

    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert listens(*target(aws["extra"]["endpoint_url"]))
    assert listens(*target(aws["extra"]["service_config"]["lambda"]["endpoint_url"]))
    assert listens(*target(env["AWS_ENDPOINT_URL"])) and listens(*target(env["AWS_ENDPOINT_URL_LAMBDA"]))
    assert listens(*target(env["FILEGATE_API_URL"]))
    for conn_id in ("FILEGATE_API", "FILEGATE_FTP", "FILEGATE_SFTP"):
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id}"])
        assert listens(conn["host"], conn["port"]), conn_id
    db = json.loads(env["AIRFLOW_CONN_FILEGATE_DB"])
    assert db["host"] == "postgres" and db["schema"] == "filegate"
    assert env["FILEGATE_SQS_QUEUE_BASE_URL"].endswith(f"/{ACCOUNT_ID}")
    assert listens(*target(env["FILEGATE_SQS_QUEUE_BASE_URL"]))
    assert env["FILEGATE_ALERT_TOPIC_ARN"] == f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{ALERT_TOPIC}"


def test_support_services_run_existing_entry_points(compose: dict[str, Any]) -> None:
    sys.path.insert(0, str(ROOT / "infra" / "docker"))
    try:
        from compose_services import SERVICES
    finally:
        sys.path.pop(0)
    for name in ("aws-init", "lambda", "ftp", "sftp", "stub-api", "lineage"):
        command = compose["services"][name]["command"]
        assert command[:2] == ["python", "infra/docker/compose_services.py"] and command[2] in SERVICES
    assert (ROOT / "infra" / "docker" / "Dockerfile").is_file()


def test_astro_override_matches_compose_and_feeds_astro_airflow(compose: dict[str, Any]) -> None:
    override = _load("docker-compose.override.yml")
    for name in SUPPORT_SERVICES:
        for key in ("image", "command", "ports"):
            assert override["services"][name].get(key) == compose["services"][name].get(key), (name, key)
    library_keys = {k for k in _client_env_keys() if k.startswith(("FILEGATE_BUCKET", "FILEGATE_SQS", "FILEGATE_ALERT",
                                                                    "FILEGATE_API_URL", "AWS_"))}
    for name in ASTRO_SERVICES:
        assert library_keys <= set(override["services"][name]["environment"]), name
    # Astro's own Postgres keeps 5432; the status store must not collide with it.
    assert 5432 not in {int(str(p).split(":")[0]) for p in override["services"]["filegate-db"]["ports"]}


def test_airflow_settings_define_every_connection_against_the_override_services() -> None:
    override = _load("docker-compose.override.yml")["services"]
    connections = {c["conn_id"]: c for c in _load("airflow_settings.yaml")["airflow"]["connections"]}
    assert _conn_ids() <= set(connections)
    for conn_id in ("filegate_api", "filegate_ftp", "filegate_sftp"):
        conn = connections[conn_id]
        assert conn["conn_port"] in _published(override[conn["conn_host"]]), conn_id
    assert connections["filegate_db"]["conn_host"] == "filegate-db"
    extra = connections["aws_default"]["conn_extra"]
    assert urllib.parse.urlsplit(extra["endpoint_url"]).hostname == "moto"
    assert urllib.parse.urlsplit(extra["service_config"]["lambda"]["endpoint_url"]).hostname == "lambda"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_compose_entry_point_serves_the_stub_api_on_the_bind_host(tmp_path: Path) -> None:
    """The container command, run here without Docker: FILEGATE_BIND_HOST is honoured and the API answers."""
    port = _free_port()
    env = {**os.environ, "FILEGATE_BIND_HOST": "127.0.0.1", "FILEGATE_STUB_API_PORT": str(port),
           "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'infra' / 'local'}"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "infra" / "docker" / "compose_services.py"), "stub-api"],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stub/requests", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "stub API did not come up"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
