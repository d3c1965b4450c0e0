"""docker-compose.yaml without Docker: the files pass the Compose Specification's JSON schema, and the documented
login (admin / admin) works on Airflow 3.3.1's api-server started from .venv with the auth settings the compose file
gives its Airflow containers (container paths mapped back to the repository through the mount and the image's
Dockerfile). Docker cannot run here, so `docker compose up` itself is not exercised."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.override.yml")
SCHEMA = ROOT / "tests" / "infra" / "schemas" / "compose-spec.json"
AIRFLOW_SERVICES = ("airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer")
# The settings that decide who may sign in to the api-server, and how tokens are signed.
AUTH_KEYS = re.compile(r"^AIRFLOW__(CORE__SIMPLE_AUTH_MANAGER_\w+|CORE__AUTH_MANAGER|API_AUTH__\w+)$")
PASSWORDS_FILE = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
LOGIN = ("admin", "admin")  # what the compose file's header and the README promise


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# ---- the Compose Specification's schema -------------------------------------------------------------------------

@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_passes_the_compose_spec_schema(name: str, validator: jsonschema.protocols.Validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
              for e in validator.iter_errors(_load(ROOT / name))]
    assert not errors, "\n".join(errors)


def _unknown_service_key(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-api-server"]["enviroment"] = {"A": "1"}


def _bad_depends_on_condition(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-api-server"]["depends_on"]["airflow-init"]["condition"] = "service_finished"


def _unknown_top_level_key(doc: dict[str, Any]) -> None:
    doc["service"] = doc.pop("services")


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["airflow-api-server"]["ports"] = {"8080": 8080}


@pytest.mark.parametrize("breakage", [_unknown_service_key, _bad_depends_on_condition, _unknown_top_level_key,
                                      _ports_not_a_list])
def test_the_schema_rejects_a_broken_copy(breakage: Any, compose: dict[str, Any],
                                          validator: jsonschema.protocols.Validator) -> None:
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert list(validator.iter_errors(broken)), f"{breakage.__name__} was accepted"


# ---- the login ---------------------------------------------------------------------------------------------------

def _auth_env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service["environment"].items() if AUTH_KEYS.match(key)}


def _image_files(dockerfile: Path) -> dict[str, Path]:
    """Container path -> repository file, for every `COPY <file> <absolute path>` of the image (ENV expanded)."""
    env: dict[str, str] = {}
    files: dict[str, Path] = {}
    for line in dockerfile.read_text().splitlines():
        if not line.startswith(("ENV ", "COPY ")):
            continue
        words = shlex.split(line, comments=True)
        if words[0] == "ENV":
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
        elif words[0] == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            if len(args) == 2 and (ROOT / args[0]).is_file():
                dest = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), args[1])
                if dest.startswith("/") and not dest.endswith("/"):
                    files[dest] = ROOT / args[0]
    return files


def _host_file(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container sees at container_path: through a bind mount of the repo, or the image."""
    target = PurePosixPath(container_path)
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        mount = PurePosixPath(rest.split(":")[0])
        if source.startswith(".") and target.is_relative_to(mount):
            return ROOT / source / target.relative_to(mount)
    build = service.get("build") or {}
    dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    files = _image_files(dockerfile)
    assert container_path in files, f"{container_path} is neither on a mount nor copied into the image by {dockerfile}"
    return files[container_path]


def test_every_airflow_container_gets_the_same_login_settings(compose: dict[str, Any]) -> None:
    envs = {name: _auth_env(compose["services"][name]) for name in AIRFLOW_SERVICES}
    assert len({json.dumps(env, sort_keys=True) for env in envs.values()}) == 1, envs
    env = envs["airflow-api-server"]
    users = [entry.split(":")[0] for entry in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")]
    assert LOGIN[0] in users
    # ALL_ADMINS makes every request an anonymous admin and accepts any password: no login at all.
    assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").lower() == "false"
    assert PASSWORDS_FILE in env, "without a passwords file Airflow generates a random password at first start"
    service = compose["services"]["airflow-api-server"]
    passwords = json.loads(_host_file(service, env[PASSWORDS_FILE]).read_text())
    assert set(users) <= set(passwords) and passwords[LOGIN[0]] == LOGIN[1]
    # Airflow opens the file for writing (r+/a+), so it must belong to the user the containers run as.
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)[-1]
    assert re.search(rf"^COPY --chown={user}(:{user})? \S+ {re.escape(env[PASSWORDS_FILE])}$", dockerfile,
                     re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, body: dict[str, str] | None = None, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _api_server_command(service: dict[str, Any], port: int) -> list[str]:
    """The compose command, run from .venv on 127.0.0.1:<port> instead of 0.0.0.0:8080."""
    command = [str(word) for word in service["command"]]
    assert command[:2] == ["airflow", "api-server"], command
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in command:
            command[command.index(flag) + 1] = value
        else:
            command += [flag, value]
    return [sys.executable, "-m", "airflow", *command[1:]]


def test_documented_login_works_on_the_airflow_api_server(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["airflow-api-server"]
    auth = _auth_env(service)
    home = tmp_path / "airflow"
    for folder in (home, tmp_path / "dags", tmp_path / "plugins"):
        folder.mkdir()
    if PASSWORDS_FILE in auth:
        # The image holds its own copy; Airflow may write to it, so the test gets a copy too.
        copied = home / PurePosixPath(auth[PASSWORDS_FILE]).name
        shutil.copyfile(_host_file(service, auth[PASSWORDS_FILE]), copied)
        auth[PASSWORDS_FILE] = str(copied)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins"),
        **auth,
    })
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600, check=False)
    assert migrate.returncode == 0, migrate.stderr[-4000:]

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(_api_server_command(service, port), env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "api-server did not come up:\n" + log.read_text()[-4000:]
            time.sleep(0.5)

        status, body = _request(f"{base}/auth/token", {"username": LOGIN[0], "password": LOGIN[1]})
        assert status == 201 and body.get("access_token"), (status, body)
        claims = _claims(body["access_token"])
        assert claims["sub"] == LOGIN[0], claims  # a signed-in admin, not ALL_ADMINS' "Anonymous"
        assert _request(f"{base}/api/v2/dags", token=body["access_token"])[0] == 200

        wrong, _ = _request(f"{base}/auth/token", {"username": LOGIN[0], "password": "not-the-password"})
        assert wrong == 401
        assert _request(f"{base}/api/v2/dags")[0] == 401  # anonymous requests are refused
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
