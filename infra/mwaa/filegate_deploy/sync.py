"""Ships a built bundle to an MWAA environment: upload what changed, delete what left, update the environment.

"Changed" is decided by content: every uploaded object carries its sha256 as user metadata (x-amz-meta-sha256),
because S3 ETags are not content hashes under SSE-KMS or multipart upload. An object without that metadata counts
as changed. DAG files take effect on their own (MWAA syncs dags/ every ~30 s); plugins.zip, requirements.txt and
startup.sh are referenced by S3 object version, so the environment is updated when the version it runs differs
from the version holding the bundle's content, which also resumes a deploy whose update step failed.

Every AWS failure (endpoint unreachable or timing out, credentials missing or rejected, access denied, bucket or
environment missing) becomes a one-line DeployError naming the call's target, region and endpoint, what to do, and
how far the deploy got. The bucket and the environment are both checked before the first write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


# Threads for the S3 head and upload calls; the S3 client's connection pool must hold as many (cli.client_config).
DEFAULT_THREADS = 16

# How far the deploy got, said at the end of every error line.
NOTHING_UPLOADED = "nothing was uploaded"
UPLOAD_STOPPED = "the upload stopped part-way: run the deploy again, it uploads only what still differs"
DELETE_STOPPED = "the upload is complete but stale dags/ objects may remain: run the deploy again"
UPDATE_NOT_STARTED = ("the bucket holds the new files but the environment was not updated: "
                      "run the deploy again to update it")
# Error codes (S3 and MWAA) that mean the credentials themselves were refused, and those that mean a missing right.
_REJECTED_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
                         "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId", "UnrecognizedClientException",
                         "InvalidSignatureException", "AuthFailure"}
_DENIED = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "Forbidden", "403"}
_PERMISSIONS = {"S3": "s3:ListBucket, s3:GetBucketVersioning, s3:GetObject, s3:PutObject and s3:DeleteObject",
                "MWAA": "airflow:GetEnvironment and airflow:UpdateEnvironment"}


class DeployError(RuntimeError):
    pass


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _where(client: Any) -> str:
    return f"region {client.meta.region_name or 'unset'}, endpoint {client.meta.endpoint_url}"


def aws_error(exc: BaseException, client: Any, subject: str, done: str = NOTHING_UPLOADED) -> DeployError | None:
    """The one-line DeployError for a botocore failure of a call on `subject` (`s3://bucket`, `environment x`);
    None when `exc` is not a botocore error."""
    from botocore import exceptions as bc

    service = client.meta.service_model.service_id  # "S3", "MWAA"
    region, endpoint = client.meta.region_name or "unset", client.meta.endpoint_url
    check_route = (f"check the network (VPN, proxy, VPC endpoints), the region (--region, AWS_REGION) and any "
                   f"endpoint override (--endpoint-url, AWS_ENDPOINT_URL_{service.upper()})")
    if isinstance(exc, (bc.ConnectTimeoutError, bc.ReadTimeoutError)):
        line = (f"{service} API at {endpoint} (region {region}) did not answer in time for {subject}: "
                f"{_one_line(exc)}; {check_route}")
    elif isinstance(exc, (bc.ConnectionError, bc.HTTPClientError)):
        line = (f"{service} API unreachable at {endpoint} (region {region}) for {subject}: {_one_line(exc)}; "
                f"{check_route}")
    elif isinstance(exc, (bc.NoCredentialsError, bc.PartialCredentialsError, bc.CredentialRetrievalError,
                          bc.TokenRetrievalError, bc.SSOError, bc.ProfileNotFound)):
        line = (f"no usable AWS credentials for {service} ({_where(client)}) to reach {subject}: {_one_line(exc)}; "
                "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or sign in (aws sso login)")
    elif isinstance(exc, bc.ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), _one_line(error.get("Message") or "")
        message = message if len(message) <= 200 else message[:200] + "…"
        said = f"{code}: {message}" if message else code
        if code in _REJECTED_CREDENTIALS:
            line = (f"AWS credentials rejected by {service} for {subject} ({said}; {_where(client)}): check "
                    "AWS_PROFILE or AWS_ACCESS_KEY_ID, or renew an expired session (aws sso login)")
        elif code in _DENIED:
            line = (f"access denied to {subject} ({service} {exc.operation_name}: {said}; {_where(client)}): the "
                    f"credentials in use need {_PERMISSIONS.get(service, 'the right')} on it")
        elif code in {"NoSuchBucket", "404", "NotFound"} and service == "S3":
            line = (f"{subject} does not exist ({_where(client)}): pass the stack output SourceBucketName as --bucket "
                    "and check the account and region")
        else:
            line = f"{service} {exc.operation_name} failed for {subject} ({said}; {_where(client)})"
    elif isinstance(exc, bc.BotoCoreError):
        line = f"{service} call failed for {subject} ({_where(client)}): {_one_line(exc)}"
    else:
        return None
    return DeployError(f"{line}; {done}")


@contextmanager
def aws_calls(client: Any, subject: str, done: str = NOTHING_UPLOADED) -> Iterator[None]:
    """Turns a botocore failure inside the block into aws_error's one-line DeployError."""
    try:
        yield
    except DeployError:
        raise
    except Exception as exc:
        error = aws_error(exc, client, subject, done)
        if error is None:
            raise
        raise error from exc


def _threads(client: Any, threads: int) -> int:
    """At most as many threads as the client has pooled connections: more only churn connections (urllib3's
    "Connection pool is full, discarding connection")."""
    pool = getattr(getattr(client.meta, "config", None), "max_pool_connections", None)
    return max(1, min(threads, pool)) if isinstance(pool, int) else max(1, threads)


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


def _remote_objects(s3: Any, bucket: str, keys: list[str], threads: int) -> dict[str, RemoteObject]:
    def head(key: str) -> RemoteObject | None:
        try:
            response = s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return RemoteObject(key, response.get("Metadata", {}).get(SHA_METADATA), response.get("VersionId"))

    with ThreadPoolExecutor(max_workers=_threads(s3, threads)) as pool:
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


def make_plan(
    s3: Any, mwaa: Any | None, bundle: Path, bucket: str, environment: str | None, *, threads: int = DEFAULT_THREADS
) -> Plan:
    """Reads only: the bucket, then the environment (a missing one is an error, so a wrong --environment stops the
    deploy before any write; leave it out for the first upload, before the environment exists), then the objects."""
    local = manifest(bundle)
    with aws_calls(s3, f"s3://{bucket}"):
        check_bucket(s3, bucket)
    state: dict[str, Any] | None = None
    if environment is not None and mwaa is not None:
        with aws_calls(mwaa, f"environment {environment}"):
            state = environment_state(mwaa, environment)
        if state is None:
            raise DeployError(f"MWAA environment {environment} does not exist ({_where(mwaa)}): check --environment "
                              "and --region, or leave --environment out to only sync the bucket (a first deploy "
                              f"creates the environment afterwards, CreateEnvironment=true); {NOTHING_UPLOADED}")
    with aws_calls(s3, f"s3://{bucket}"):
        remote_dags = _list_dags(s3, bucket)
        remote = _remote_objects(s3, bucket, sorted(set(remote_dags) | set(ENVIRONMENT_FILES)), threads)
    plan = Plan(bucket=bucket, environment=environment)
    for key, sha in local.items():
        current = remote.get(key)
        (plan.unchanged if current is not None and current.sha256 == sha else plan.upload).append(key)
    plan.delete = sorted(key for key in remote_dags if key not in local)
    if state is None:
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
    threads: int = DEFAULT_THREADS,
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
    workers = _threads(s3, threads)
    with aws_calls(s3, f"s3://{plan.bucket}", UPLOAD_STOPPED), ThreadPoolExecutor(max_workers=workers) as pool:
        versions = dict(pool.map(upload, ordered))
    with aws_calls(s3, f"s3://{plan.bucket}", DELETE_STOPPED):
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
        with aws_calls(mwaa, f"environment {plan.environment}", UPDATE_NOT_STARTED):
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
        with aws_calls(mwaa, f"environment {name}", f"the update was started: follow it with "
                                                     f"`aws mwaa get-environment --name {name}`"):
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
