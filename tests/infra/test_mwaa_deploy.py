"""The deploy against moto's S3 (server mode); MWAA through botocore's Stubber, which validates every request
against the real MWAA API model (moto 5.2.5 has no MWAA backend)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from filegate_deploy import sync
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
    assert "dags/process_feeds.py" in plan.upload and "dags/filegate/__init__.py" in plan.upload
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


def test_a_missing_environment_is_reported_not_updated(s3: Any, bucket: str, bundle: Path, mwaa: Any) -> None:
    with Stubber(mwaa) as stub:
        stub.add_client_error("get_environment", service_error_code="ResourceNotFoundException", http_status_code=404)
        plan = sync.make_plan(s3, mwaa, bundle, bucket, ENV)
    assert plan.environment_update == {} and "does not exist yet" in plan.render()


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
