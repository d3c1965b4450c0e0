"""The built bundle runs as MWAA 3.3.1 runs it: from `make bundle`'s output alone, laid out in the image's folders,
its requirements.txt installed into a fresh virtual environment under MWAA's versions, startup.sh sourced, PYTHONPATH
and the environment merged by the image's rules (filegate_deploy.mwaa_image), nothing of the repository on the path.
Airflow's api-server, scheduler, dag-processor and triggerer start from there against the local stand-ins for AWS,
Postgres and the partner API; then every DAG must parse, a file put into S3 must reach `processed`, and the Filegate
page, its REST API and its upload endpoint must answer (401 anonymous, 200 signed in)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import ROOT
from cryptography.fernet import Fernet
from filegate_deploy.mwaa_image import (
    Layout,
    component_environment,
    configuration_options,
    install,
    lay_out,
    repository_lock,
)

from filegate.status.store import StatusStore
from filegate.storage import keys
from filegate_stack.config import Ports, StackConfig, free_port
from filegate_stack.procs import PidRecord, log_tail, spawn, stop_group, wait_until, write_pid
from filegate_stack.stack import Stack

pytestmark = pytest.mark.integration

SUPPORT = ["postgres", "moto", "lambda", "ftp", "stub_api"]
COMPONENTS = {
    "api-server": ["api-server"],
    # The log servers would bind 0.0.0.0; task logs are read from local files here.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
SAMPLE = ROOT / "include" / "samples" / "events" / "events_2026-11-20.ndjson"
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


@dataclass
class MwaaRun:
    layout: Layout
    venv: Path
    url: str
    env: dict[str, str]
    client_env: dict[str, str]
    logs: Path

    def request(self, method: str, path: str, token: str | None = None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        all_headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method, headers=all_headers)
        try:
            with _NO_REDIRECTS.open(request, timeout=30) as resp:
                return resp.status, resp.headers.get("content-type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("content-type", ""), exc.read()

    def token(self) -> str:
        status, _, body = self.request("POST", "/auth/token", body=json.dumps(
            {"username": "admin", "password": "admin"}).encode(), headers={"Content-Type": "application/json"})
        assert status == 201, body
        token: str = json.loads(body)["access_token"]
        return token

    def api(self, path: str, token: str) -> Any:
        status, _, body = self.request("GET", path, token)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{log_tail(p, 60)}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def mwaa(built_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MwaaRun]:
    layout = lay_out(built_bundle, tmp_path_factory.mktemp("mwaa-root"))
    venv = install(layout, repository_lock(), ROOT / ".filegate" / "mwaa-venvs")
    stack = Stack(tmp_path_factory.mktemp("mwaa-stack"), Ports.free(),
                  StackConfig(db_url=None, airflow_db_url=None, stub_api_token=None, startup_timeout=90))
    logs = tmp_path_factory.mktemp("mwaa-logs")
    records: dict[str, PidRecord] = {}
    try:
        stack.start(SUPPORT)
        client = stack.env()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        secret = Fernet.generate_key().decode()
        passwords = layout.airflow_home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(json.dumps({"admin": "admin", "viewer": "viewer"}))
        # What MWAA derives from the account (database, keys, its own URL), as the image's essential settings.
        settings = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": client["FILEGATE_AIRFLOW_DB_URL"],
            "AIRFLOW__CORE__FERNET_KEY": secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution",
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
        # The environment's Airflow configuration options, read from the CloudFormation template (its secrets
        # backend included), then what a local run needs: loopback serving and one api-server worker.
        options = configuration_options(ROOT / "infra" / "aws" / "filegate.yaml", {
            "filegate.bucket": client["FILEGATE_BUCKET"],
            "filegate.sqs_queue_base_url": client["FILEGATE_SQS_QUEUE_BASE_URL"],
            "filegate.alert_topic_arn": client["FILEGATE_ALERT_TOPIC_ARN"],
            "filegate.sqs_waiter_delay": "1",
        })
        user_config = {
            **options,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # Parsing on a loaded 2-core test machine can pass MWAA's 30 s default.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        }
        # Connections live in Secrets Manager under the template's prefix, as the README's deploy steps put them;
        # aws_default is left out of that lookup by MWAA (its execution role): here it points at the stand-ins.
        prefix = json.loads(options["AIRFLOW__SECRETS__BACKEND_KWARGS"])["connections_prefix"]
        secrets = boto3.client("secretsmanager", endpoint_url=client["AWS_ENDPOINT_URL"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        for name, value in client.items():
            if name.startswith("AIRFLOW_CONN_") and name != "AIRFLOW_CONN_AWS_DEFAULT":
                secrets.create_secret(Name=f"{prefix}/{name.removeprefix('AIRFLOW_CONN_').lower()}", SecretString=value)
        aws = {k: v for k, v in client.items() if k.startswith("AWS_") or k == "AIRFLOW_CONN_AWS_DEFAULT"}
        env = {**component_environment(layout, venv, settings=settings, user_config=user_config), **aws}
        airflow = str(venv / "bin" / "airflow")
        migrate = subprocess.run([airflow, "db", "migrate"], env=env, cwd=layout.airflow_home,
                                               capture_output=True, text=True, timeout=600, check=False)
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        for name, argv in COMPONENTS.items():
            pid = spawn([airflow, *argv], env=env, log_path=logs / f"{name}.log", cwd=layout.airflow_home)
            records[name] = write_pid(logs / f"{name}.pid", pid)
        run = MwaaRun(layout, venv, url, env, client, logs)

        def up() -> bool:
            for name, record in records.items():
                if not record.alive():
                    raise RuntimeError(f"{name} exited:\n{run.diagnostics()}")
            try:
                status, _, body = run.request("GET", "/api/v2/monitor/health")
            except OSError:  # not listening yet
                return False
            if status != 200:
                return False
            health = json.loads(body)
            return all((health.get(part) or {}).get("status") == "healthy"
                       for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

        wait_until(up, timeout=240, what="Airflow from the MWAA layout", interval=1.0)
        yield run
    finally:
        for record in records.values():
            stop_group(record, timeout=20)
        stack.stop()


def test_nothing_of_the_repository_is_on_the_path(mwaa: MwaaRun) -> None:
    done = subprocess.run([str(mwaa.venv / "bin" / "python"), "-c", "import filegate"],
                                        env=mwaa.env, cwd=mwaa.layout.airflow_home, capture_output=True, text=True,
                                        timeout=120, check=False)
    # Outside Airflow, plain Python sees only the image's /python and the environment: the library is not found.
    assert done.returncode != 0 and "No module named 'filegate'" in done.stderr, done.stdout + done.stderr
    assert mwaa.env["PYTHONPATH"] == str(mwaa.layout.image_python)
    assert not list((mwaa.venv / "lib").glob("python3*/site-packages/*.pth")) or all(
        str(ROOT) not in p.read_text() for p in (mwaa.venv / "lib").glob("python3*/site-packages/*.pth"))


LOCKED_VERSIONS = """
import importlib.metadata, json, sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
locked = {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            locked[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
print(json.dumps({"locked": locked, "installed": installed}))
"""


def test_the_environment_holds_the_locked_versions(mwaa: MwaaRun) -> None:
    """Every installed package is at the lock's version, which test_mwaa_versions holds to MWAA's."""
    done = subprocess.run([str(mwaa.venv / "bin" / "python"), "-c", LOCKED_VERSIONS, str(repository_lock())],
                          env=mwaa.env, cwd=mwaa.layout.airflow_home, capture_output=True, text=True, timeout=120,
                          check=True)
    versions = json.loads(done.stdout)
    installed, locked = versions["installed"], versions["locked"]
    assert installed["apache-airflow"] == "3.3.1" and "apache-airflow-providers-fab" in installed
    unlocked = sorted(set(installed) - set(locked))
    assert unlocked == [], f"installed but not in the lock: {unlocked}"
    drift = {name: (version, locked[name]) for name, version in installed.items() if version != locked[name]}
    assert drift == {}
    assert "filegate" not in installed


def test_every_dag_parses(mwaa: MwaaRun, repository_dag_ids: list[str]) -> None:
    token = mwaa.token()
    expected = set(repository_dag_ids)
    deadline = time.monotonic() + 180
    while True:
        errors = mwaa.api("/api/v2/importErrors", token)["import_errors"]
        assert errors == [], [(e["filename"], e["stack_trace"][-1500:]) for e in errors]
        found = {d["dag_id"] for d in mwaa.api("/api/v2/dags?limit=500", token)["dags"]}
        if expected <= found or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert expected <= found, f"missing {sorted(expected - found)}\n{mwaa.diagnostics()}"


def test_the_plugin_loads_in_the_api_server(mwaa: MwaaRun) -> None:
    token = mwaa.token()
    plugins = mwaa.api("/api/v2/plugins", token)
    assert "filegate" in {p["name"] for p in plugins["plugins"]}, plugins
    assert mwaa.api("/api/v2/plugins/importErrors", token)["import_errors"] == []


def test_the_filegate_page_needs_a_sign_in(mwaa: MwaaRun) -> None:
    status, _, _ = mwaa.request("GET", "/filegate/page")
    assert status == 307  # to Airflow's login, which comes back to the page
    status, content_type, body = mwaa.request("GET", "/filegate/page", mwaa.token())
    assert status == 200, body[:500]
    # A refused plugin prefix would serve the UI's index.html with 200: the content type and body tell them apart.
    assert content_type.startswith("text/html") and b"Filegate" in body


@pytest.mark.parametrize("path", ["/filegate/api/feeds", "/filegate/api/files", "/filegate/openapi.json"])
def test_the_filegate_api_answers_signed_in_only(mwaa: MwaaRun, path: str) -> None:
    anonymous, _, _ = mwaa.request("GET", path)
    status, content_type, body = mwaa.request("GET", path, mwaa.token())
    assert status == 200, body[:500]
    assert content_type.startswith("application/json"), content_type
    if path.startswith("/filegate/api/"):
        assert anonymous == 401
    if path.endswith("/feeds"):
        assert {"events", "orders"} <= {feed["name"] for feed in json.loads(body)}


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _wait_for_terminal(mwaa: MwaaRun, raw_key: str, timeout: float = 300) -> dict[str, Any]:
    store = StatusStore.connect(mwaa.client_env["FILEGATE_DB_URL"])
    deadline = time.monotonic() + timeout
    row: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        row = store.reads.find_by_raw_keys([raw_key]).get(raw_key)
        if row and row["status"] in TERMINAL:
            return row
        time.sleep(2)
    raise AssertionError(f"{raw_key}: {row and row['status']} after {timeout:.0f} s\n{mwaa.diagnostics()}")


def _unpause(mwaa: MwaaRun, dag_id: str) -> None:
    """DAGs start paused, as on MWAA; only the one a test drives is switched on."""
    status, _, body = mwaa.request("PATCH", f"/api/v2/dags/{dag_id}", mwaa.token(), json.dumps(
        {"is_paused": False}).encode(), {"Content-Type": "application/json"})
    assert status == 200, body[:500]


def test_a_file_put_into_s3_is_processed(mwaa: MwaaRun) -> None:
    _unpause(mwaa, "process_events")
    s3 = boto3.client("s3", endpoint_url=mwaa.client_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    key = keys.raw_key("events", date.today(), SAMPLE.name)
    s3.upload_file(str(SAMPLE), mwaa.client_env["FILEGATE_BUCKET"], key)
    row = _wait_for_terminal(mwaa, key)
    assert row["status"] == "processed", row


def test_the_upload_endpoint_takes_a_file_signed_in_only(mwaa: MwaaRun) -> None:
    _unpause(mwaa, "process_events")
    # One more trailing newline: the same rows, other bytes, so the file is not a duplicate of the S3 one.
    body, content_type = _multipart("events_upload.ndjson", SAMPLE.read_bytes() + b"\n")
    path = "/filegate/api/feeds/events/files"
    status, _, _ = mwaa.request("POST", path, body=body, headers={"Content-Type": content_type})
    assert status == 401
    status, _, answer = mwaa.request("POST", path, mwaa.token(), body=body, headers={"Content-Type": content_type})
    assert status == 201, answer[:1000]
    raw_key = json.loads(answer)["raw_key"]
    assert raw_key.startswith("raw/events/")
    row = _wait_for_terminal(mwaa, raw_key)
    assert row["status"] in {"processed", "duplicate"}, row
