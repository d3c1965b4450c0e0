"""The deploy against moto's S3 (server mode); MWAA through botocore's Stubber, which validates every request
against the real MWAA API model (moto 5.2.5 has no MWAA backend), or, through the CLI, through a local HTTP stub
answering as MWAA's API does. Failures (closed ports, missing bucket or environment, refused credentials) go
through `python -m filegate_deploy` as the Makefile runs it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import exceptions as botocore_errors
from botocore.stub import ANY, Stubber
from filegate_deploy import cli, sync
from filegate_deploy.bundle import ENVIRONMENT_FILES, manifest
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ENV = "filegate"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_url: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_url, **CREDENTIALS)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = f"mwaa-{request.node.name.replace('_', '-')[:40].lower()}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def bundle(built_bundle: Path, tmp_path: Path) -> Path:
    """A private copy: tests change files in it."""
    copy = tmp_path / "mwaa"
    shutil.copytree(built_bundle, copy)
    return copy


@pytest.fixture
def mwaa() -> Any:
    return boto3.client("mwaa", **CREDENTIALS)


def _environment(versions: dict[str, str], status: str = "AVAILABLE") -> dict[str, Any]:
    fields = {name: sync.VERSION_FIELDS[name][1] for name in ENVIRONMENT_FILES}
    return {"Environment": {"Name": ENV, "Status": status, **{fields[n]: v for n, v in versions.items()}}}


def _latest_versions(s3: Any, bucket: str) -> dict[str, str]:
    return {name: s3.head_object(Bucket=bucket, Key=name)["VersionId"] for name in ENVIRONMENT_FILES}


def _capture_update(mwaa: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    mwaa.meta.events.register("provide-client-params.mwaa.UpdateEnvironment", lambda params, **_: calls.append(params))
    return calls


def test_first_deploy_dry_run_plans_every_object_and_changes_nothing(s3: Any, bucket: str, bundle: Path) -> None:
    plan = sync.make_plan(s3, None, bundle, bucket, None)
    assert plan.upload == list(manifest(bundle))
    assert "dags/process_feeds.py" in plan.upload and "dags/feeds/events.yaml" in plan.upload
    assert "dags/feeds/orders.yaml" in plan.upload and "dags/.airflowignore" in plan.upload
    assert set(ENVIRONMENT_FILES) <= set(plan.upload)
    assert plan.delete == [] and plan.environment_update == {}
    assert "upload     dags/process_feeds.py" in plan.render()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_real_run_uploads_objects_with_content_hashes_and_versions(s3: Any, bucket: str, bundle: Path) -> None:
    plan = sync.make_plan(s3, None, bundle, bucket, None)
    versions = sync.apply(plan, s3, None, bundle)
    expected = manifest(bundle)
    listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])}
    assert listed == set(expected)
    for key in ("dags/process_feeds.py", "requirements.txt", "plugins.zip", "startup.sh"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == expected[key]
        assert head["VersionId"] == versions[key]
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == (bundle / key).read_bytes()
    again = sync.make_plan(s3, None, bundle, bucket, None)
    assert again.empty and len(again.unchanged) == len(expected)


def test_dag_only_change_uploads_one_file_deletes_stale_and_leaves_the_environment(
    s3: Any, bucket: str, bundle: Path, mwaa: Any
) -> None:
    sync.apply(sync.make_plan(s3, None, bundle, bucket, None), s3, None, bundle)
    s3.put_object(Bucket=bucket, Key="dags/retired_dag.py", Body=b"# removed from the repository")
    (bundle / "dags" / "process_feeds.py").write_text((bundle / "dags" / "process_feeds.py").read_text() + "\n# x\n")
    running = _latest_versions(s3, bucket)
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment(running), {"Name": ENV})
        plan = sync.make_plan(s3, mwaa, bundle, bucket, ENV)
        assert plan.upload == ["dags/process_feeds.py"]
        assert plan.delete == ["dags/retired_dag.py"]
        assert plan.environment_update == {}
        assert "no update needed" in plan.render()
        sync.apply(plan, s3, mwaa, bundle)  # the Stubber fails on any update_environment call
        stub.assert_no_pending_responses()
    assert s3.list_objects_v2(Bucket=bucket, Prefix="dags/retired_dag.py").get("KeyCount") == 0
    assert sync.make_plan(s3, None, bundle, bucket, None).empty


def test_requirements_change_updates_the_environment_with_the_new_version(
    s3: Any, bucket: str, bundle: Path, mwaa: Any
) -> None:
    sync.apply(sync.make_plan(s3, None, bundle, bucket, None), s3, None, bundle)
    before = _latest_versions(s3, bucket)
    (bundle / "requirements.txt").write_text((bundle / "requirements.txt").read_text() + "humanize==4.12.3\n")
    calls = _capture_update(mwaa)
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment(before), {"Name": ENV})
        stub.add_response("update_environment", {"Arn": f"arn:aws:airflow:{REGION}:123456789012:environment/{ENV}"},
                          {"Name": ENV, "RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": ANY})
        plan = sync.make_plan(s3, mwaa, bundle, bucket, ENV)
        assert plan.upload == ["requirements.txt"]
        assert plan.environment_update == {"requirements.txt": sync.NEW_VERSION}
        versions = sync.apply(plan, s3, mwaa, bundle)
        stub.assert_no_pending_responses()
    after = _latest_versions(s3, bucket)
    assert after["requirements.txt"] != before["requirements.txt"]
    assert versions == {"requirements.txt": after["requirements.txt"]}
    assert calls == [{"Name": ENV, "RequirementsS3Path": "requirements.txt",
                      "RequirementsS3ObjectVersion": after["requirements.txt"]}]


def test_an_environment_left_on_an_old_version_is_moved_to_the_current_one(
    s3: Any, bucket: str, bundle: Path, mwaa: Any
) -> None:
    """Resumes a deploy whose update-environment failed after the upload: content unchanged, versions differ."""
    sync.apply(sync.make_plan(s3, None, bundle, bucket, None), s3, None, bundle)
    current = _latest_versions(s3, bucket)
    calls = _capture_update(mwaa)
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment({**current, "plugins.zip": "an-older-version"}),
                          {"Name": ENV})
        stub.add_response("update_environment", {"Arn": "arn"}, {"Name": ENV, "PluginsS3Path": "plugins.zip",
                                                                 "PluginsS3ObjectVersion": current["plugins.zip"]})
        plan = sync.make_plan(s3, mwaa, bundle, bucket, ENV)
        assert plan.upload == [] and plan.environment_update == {"plugins.zip": current["plugins.zip"]}
        sync.apply(plan, s3, mwaa, bundle)
        stub.assert_no_pending_responses()
    assert calls[0]["PluginsS3ObjectVersion"] == current["plugins.zip"]


def test_a_busy_environment_stops_the_deploy_before_any_upload(
    s3: Any, bucket: str, bundle: Path, mwaa: Any
) -> None:
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment({}, status="UPDATING"), {"Name": ENV})
        plan = sync.make_plan(s3, mwaa, bundle, bucket, ENV)
        with pytest.raises(sync.DeployError, match="UPDATING"):
            sync.apply(plan, s3, mwaa, bundle)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_missing_environment_stops_the_deploy_before_any_upload(
    s3: Any, bucket: str, bundle: Path, mwaa: Any
) -> None:
    """A wrong --environment fails before any write; the first upload, before the environment exists, leaves it out."""
    with Stubber(mwaa) as stub:
        stub.add_client_error("get_environment", service_error_code="ResourceNotFoundException", http_status_code=404)
        with pytest.raises(sync.DeployError, match=f"MWAA environment {ENV} does not exist .*nothing was uploaded"):
            sync.make_plan(s3, mwaa, bundle, bucket, ENV)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_an_unversioned_bucket_is_refused(s3: Any, bundle: Path) -> None:
    s3.create_bucket(Bucket="mwaa-unversioned")
    with pytest.raises(sync.DeployError, match="versioning"):
        sync.make_plan(s3, None, bundle, "mwaa-unversioned", None)


def test_cli_dry_run_then_real_run(moto_url: str, s3: Any, bucket: str, bundle: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "infra" / "mwaa"), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}
    base = [sys.executable, "-m", "filegate_deploy", "deploy", "--bucket", bucket, "--bundle", str(bundle),
            "--endpoint-url", moto_url]
    dry = subprocess.run([*base, "--dry-run"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert dry.returncode == 0, dry.stderr
    assert "upload     plugins.zip" in dry.stdout and "dry run: nothing uploaded" in dry.stdout
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    real = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert real.returncode == 0, real.stderr
    version = s3.head_object(Bucket=bucket, Key="plugins.zip")["VersionId"]
    assert f"uploaded plugins.zip version {version}" in real.stdout
    rerun = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "nothing to do" in rerun.stdout


# ---- the S3 connection pool holds the upload threads


@pytest.mark.parametrize("threads", [None, 40], ids=["default-threads", "40-threads"])
def test_uploads_never_overflow_the_connection_pool(
    moto_url: str, s3: Any, bucket: str, bundle: Path, threads: int | None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Many small files through the CLI's own clients: urllib3 warns "Connection pool is full, discarding
    connection" whenever more threads than pooled connections run."""
    for n in range(300):
        (bundle / "dags" / f"extra_{n:03d}.sql").write_text(f"select {n};\n")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", REGION)):
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    argv = ["deploy", "--bucket", bucket, "--bundle", str(bundle), "--endpoint-url", moto_url]
    assert cli.main([*argv, *(["--threads", str(threads)] if threads else [])]) == 0
    overflow = [r.getMessage() for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert overflow == [], f"{len(overflow)} pool overflows, first: {overflow[0]}"
    assert s3.list_objects_v2(Bucket=bucket, Prefix="dags/extra_").get("KeyCount") == 300


@pytest.mark.parametrize("threads", [1, 16, 64])
def test_the_s3_pool_holds_every_thread(threads: int) -> None:
    args = argparse.Namespace(threads=threads, endpoint_url=None, region=REGION)
    assert cli.client_config("s3", args).max_pool_connections >= threads


# ---- every failure is one line on stderr, no traceback, exit code 1


@pytest.mark.parametrize(("error", "said"), [
    (botocore_errors.ConnectTimeoutError(endpoint_url="https://api.airflow.eu-west-1.amazonaws.com/environments/x"),
     "MWAA API at https://airflow.eu-west-1.amazonaws.com (region eu-west-1) did not answer in time for environment x"),
    (botocore_errors.ReadTimeoutError(endpoint_url="https://api.airflow.eu-west-1.amazonaws.com/environments/x"),
     "did not answer in time"),
    (botocore_errors.EndpointConnectionError(endpoint_url="https://api.airflow.eu-west-1.amazonaws.com/x",
                                             error="[Errno -2] Name or service not known"),  # DNS
     "MWAA API unreachable at https://airflow.eu-west-1.amazonaws.com (region eu-west-1) for environment x"),
    (botocore_errors.TokenRetrievalError(provider="sso", error_msg="the SSO session has expired"),
     "no usable AWS credentials for MWAA"),
])
def test_timeouts_dns_and_expired_sessions_read_as_one_line(error: Exception, said: str) -> None:
    """The failures a closed port cannot produce, translated as the CLI prints them."""
    client = boto3.client("mwaa", aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
    translated = sync.aws_error(error, client, "environment x", sync.UPDATE_NOT_STARTED)
    assert translated is not None and "\n" not in str(translated)
    assert said in str(translated) and str(translated).endswith(sync.UPDATE_NOT_STARTED)
    assert sync.aws_error(ValueError("not AWS"), client, "environment x") is None


class _StubAws:
    """A local HTTP server answering every request with one canned AWS error; it records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.reply: tuple[int, dict[str, str], bytes] = (500, {}, b"")
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.requests.append((self.command, self.path))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, body = stub.reply
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mwaa_error(self, status: int, code: str, message: str) -> None:
        self.reply = (status, {"Content-Type": "application/json", "x-amzn-ErrorType": code},
                      json.dumps({"message": message}).encode())

    def s3_error(self, status: int, code: str, message: str) -> None:
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
        self.reply = (status, {"Content-Type": "application/xml"}, body.encode())


@pytest.fixture
def stub_aws() -> Iterator[_StubAws]:
    stub = _StubAws()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _deploy_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m filegate_deploy deploy ...` as the Makefile runs it, with no AWS setting from this machine."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full = {**clean, "PYTHONPATH": str(ROOT / "infra" / "mwaa"), "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            **env}
    full = {k: v for k, v in full.items() if v}  # "" unsets
    return subprocess.run([sys.executable, "-m", "filegate_deploy", "deploy", *args], capture_output=True, text=True,
                          env=full, timeout=120, check=False)


def _error_case(case: str, moto: str, bucket: str, stub: _StubAws) -> tuple[list[str], dict[str, str], list[str]]:
    """(CLI arguments, environment, what the error line must say) for one failure."""
    on_moto_s3 = {"AWS_ENDPOINT_URL_S3": moto}
    if case == "mwaa-unreachable":
        url = _closed_port()
        return (["--bucket", bucket, "--environment", ENV], {**on_moto_s3, "AWS_ENDPOINT_URL_MWAA": url},
                [f"MWAA API unreachable at {url}", f"region {REGION}", f"environment {ENV}", "Could not connect",
                 "AWS_ENDPOINT_URL_MWAA"])
    if case == "environment-missing":
        stub.mwaa_error(404, "ResourceNotFoundException", f"Environment {ENV} not found")
        return (["--bucket", bucket, "--environment", ENV], {**on_moto_s3, "AWS_ENDPOINT_URL_MWAA": stub.url},
                [f"MWAA environment {ENV} does not exist", f"region {REGION}", f"endpoint {stub.url}",
                 "check --environment"])
    if case == "mwaa-credentials-rejected":
        stub.mwaa_error(403, "UnrecognizedClientException", "The security token included in the request is invalid")
        return (["--bucket", bucket, "--environment", ENV], {**on_moto_s3, "AWS_ENDPOINT_URL_MWAA": stub.url},
                ["AWS credentials rejected by MWAA", f"environment {ENV}", "UnrecognizedClientException",
                 f"region {REGION}"])
    if case == "s3-unreachable":
        url = _closed_port()
        return (["--bucket", bucket, "--endpoint-url", url], {},
                [f"S3 API unreachable at {url}", f"s3://{bucket}", f"region {REGION}"])
    if case == "bucket-missing":
        return (["--bucket", "mwaa-no-such-bucket", "--endpoint-url", moto], {},
                ["s3://mwaa-no-such-bucket does not exist", f"region {REGION}", f"endpoint {moto}",
                 "SourceBucketName"])
    if case == "bucket-access-denied":
        stub.s3_error(403, "AccessDenied", "Access Denied")
        return (["--bucket", bucket, "--endpoint-url", stub.url], {},
                [f"access denied to s3://{bucket}", "AccessDenied", f"region {REGION}", "s3:PutObject"])
    if case == "credentials-missing":
        return (["--bucket", bucket, "--endpoint-url", moto], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
                ["no usable AWS credentials for S3", f"s3://{bucket}", "AWS_PROFILE"])
    assert case == "s3-credentials-rejected"
    stub.s3_error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    return (["--bucket", bucket, "--endpoint-url", stub.url], {},
            ["AWS credentials rejected by S3", f"s3://{bucket}", "InvalidAccessKeyId"])


ERROR_CASES = ["mwaa-unreachable", "environment-missing", "mwaa-credentials-rejected", "s3-unreachable",
               "bucket-missing", "bucket-access-denied", "credentials-missing", "s3-credentials-rejected"]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_a_failure_is_one_line_and_nothing_is_written(
    case: str, moto_url: str, s3: Any, bucket: str, bundle: Path, stub_aws: _StubAws
) -> None:
    args, env, expected = _error_case(case, moto_url, bucket, stub_aws)
    done = _deploy_cli([*args, "--bundle", str(bundle)], env)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("filegate_deploy: "), done.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert lines[0].endswith("nothing was uploaded"), lines[0]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not [r for r in stub_aws.requests if r[0] in {"PUT", "POST", "DELETE", "PATCH"}], stub_aws.requests
