"""Ships a built bundle to an MWAA environment: upload what changed, delete what left, update the environment.

"Changed" is decided by content: every uploaded object carries its sha256 as user metadata (x-amz-meta-sha256),
because S3 ETags are not content hashes under SSE-KMS or multipart upload. An object without that metadata counts
as changed. DAG files take effect on their own (MWAA syncs dags/ every ~30 s); plugins.zip, requirements.txt and
startup.sh are referenced by S3 object version, so the environment is updated when the version it runs differs
from the version holding the bundle's content, which also resumes a deploy whose update step failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filegate_deploy.bundle import ENVIRONMENT_FILES, manifest

log = logging.getLogger(__name__)

DAGS_PREFIX = "dags/"
SHA_METADATA = "sha256"
# MWAA's UpdateEnvironment parameters for each versioned file.
VERSION_FIELDS = {
    "plugins.zip": ("PluginsS3Path", "PluginsS3ObjectVersion"),
    "requirements.txt": ("RequirementsS3Path", "RequirementsS3ObjectVersion"),
    "startup.sh": ("StartupScriptS3Path", "StartupScriptS3ObjectVersion"),
}
CONTENT_TYPES = {".py": "text/x-python", ".yaml": "application/yaml", ".txt": "text/plain", ".sh": "text/x-shellscript",
                 ".zip": "application/zip", ".json": "application/json", ".sql": "text/plain"}


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class RemoteObject:
    key: str
    sha256: str | None
    version_id: str | None


@dataclass
class Plan:
    bucket: str
    environment: str | None
    upload: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # file → version to run ("<new>" until the upload happens), only where the environment must change.
    environment_update: dict[str, str] = field(default_factory=dict)
    environment_status: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.upload or self.delete or self.environment_update)

    def render(self) -> str:
        lines = [f"plan for s3://{self.bucket}" + (f" and MWAA environment {self.environment}" if self.environment
                                                  else " (no environment update)")]
        lines += [f"  upload     {key}" for key in self.upload]
        lines += [f"  delete     {key}" for key in self.delete]
        lines.append(f"  unchanged  {len(self.unchanged)} object(s)")
        for name, version in sorted(self.environment_update.items()):
            lines.append(f"  update-environment {VERSION_FIELDS[name][1]}={version}")
        if self.environment and not self.environment_update:
            lines.append("  environment: no update needed (plugins.zip, requirements.txt, startup.sh unchanged)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


NEW_VERSION = "<new>"


def _remote_objects(s3: Any, bucket: str, keys: list[str]) -> dict[str, RemoteObject]:
    def head(key: str) -> RemoteObject | None:
        try:
            response = s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return RemoteObject(key, response.get("Metadata", {}).get(SHA_METADATA), response.get("VersionId"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        found = list(pool.map(head, keys))
    return {obj.key: obj for obj in found if obj is not None}


def _list_dags(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DAGS_PREFIX):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def check_bucket(s3: Any, bucket: str) -> None:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise DeployError(f"s3://{bucket} has versioning {status or 'off'}: MWAA needs a versioned source bucket")


def environment_state(mwaa: Any, name: str) -> dict[str, Any] | None:
    try:
        environment: dict[str, Any] = mwaa.get_environment(Name=name)["Environment"]
    except mwaa.exceptions.ResourceNotFoundException:
        return None
    return environment


def make_plan(s3: Any, mwaa: Any | None, bundle: Path, bucket: str, environment: str | None) -> Plan:
    check_bucket(s3, bucket)
    local = manifest(bundle)
    remote_dags = _list_dags(s3, bucket)
    remote = _remote_objects(s3, bucket, sorted(set(remote_dags) | set(ENVIRONMENT_FILES)))
    plan = Plan(bucket=bucket, environment=environment)
    for key, sha in local.items():
        current = remote.get(key)
        (plan.unchanged if current is not None and current.sha256 == sha else plan.upload).append(key)
    plan.delete = sorted(key for key in remote_dags if key not in local)
    if environment is None or mwaa is None:
        return plan
    state = environment_state(mwaa, environment)
    if state is None:
        plan.notes.append(f"MWAA environment {environment} does not exist yet: create it (CreateEnvironment=true) "
                          "after this upload; it starts on the latest object versions")
        return plan
    plan.environment_status = state.get("Status")
    for name in ENVIRONMENT_FILES:
        running = state.get(VERSION_FIELDS[name][1])
        if name in plan.upload:
            plan.environment_update[name] = NEW_VERSION
        elif remote[name].version_id and running != remote[name].version_id:
            plan.environment_update[name] = remote[name].version_id  # type: ignore[assignment]
    return plan


def _content_type(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")


def apply(
    plan: Plan,
    s3: Any,
    mwaa: Any | None,
    bundle: Path,
    *,
    wait: bool = False,
    timeout_s: float = 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Uploads, deletes, then updates the environment; returns {key: new version id} of what was uploaded."""
    local = manifest(bundle)
    if plan.environment_update and plan.environment_status not in (None, "AVAILABLE", "UPDATE_FAILED"):
        raise DeployError(f"environment {plan.environment} is {plan.environment_status}: MWAA accepts an update only "
                          "when AVAILABLE; nothing was uploaded, run the deploy again later")

    def upload(key: str) -> tuple[str, str]:
        path = bundle / key
        response = s3.put_object(Bucket=plan.bucket, Key=key, Body=path.read_bytes(),
                                 ContentType=_content_type(key), Metadata={SHA_METADATA: local[key]})
        return key, response.get("VersionId") or ""

    # DAG files first and the environment files last, so a new plugins.zip or requirements.txt never lands
    # before the DAG code that needs it.
    ordered = sorted(plan.upload, key=lambda key: (key in ENVIRONMENT_FILES, key))
    with ThreadPoolExecutor(max_workers=16) as pool:
        versions = dict(pool.map(upload, ordered))
    for start in range(0, len(plan.delete), 1000):
        chunk = plan.delete[start:start + 1000]
        s3.delete_objects(Bucket=plan.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
    log.info("uploaded %d, deleted %d, unchanged %d", len(plan.upload), len(plan.delete), len(plan.unchanged))

    if plan.environment_update and mwaa is not None and plan.environment:
        arguments: dict[str, str] = {"Name": plan.environment}
        for name, version in plan.environment_update.items():
            path_field, version_field = VERSION_FIELDS[name]
            arguments[path_field] = name
            arguments[version_field] = versions[name] if version == NEW_VERSION else version
        mwaa.update_environment(**arguments)
        log.info("update-environment %s", arguments)
        if wait:
            wait_until_available(mwaa, plan.environment, timeout_s=timeout_s, sleep=sleep)
    return versions


def wait_until_available(
    mwaa: Any, name: str, *, timeout_s: float, sleep: Callable[[float], None] = time.sleep, every_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        state = environment_state(mwaa, name) or {}
        status = state.get("Status")
        if status == "AVAILABLE":
            return
        if status in {"UPDATE_FAILED", "CREATE_FAILED", "UNAVAILABLE"}:
            error = (state.get("LastUpdate") or {}).get("Error") or {}
            raise DeployError(f"environment {name} is {status}: {error.get('ErrorCode')} {error.get('ErrorMessage')}")
        if time.monotonic() > deadline:
            raise DeployError(f"environment {name} still {status} after {timeout_s:.0f} s")
        sleep(every_s)
