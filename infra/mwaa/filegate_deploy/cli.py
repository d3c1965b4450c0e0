"""`python -m filegate_deploy build | deploy | template`: the MWAA bundle, its deploy, the CloudFormation template."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from filegate_deploy import bundle, sync, template

log = logging.getLogger("filegate_deploy")


# AWS endpoints accept a TCP connection at once; a longer wait only delays the error on an unreachable network.
CONNECT_TIMEOUT_S = 10


def _endpoint_override(service: str, args: argparse.Namespace) -> bool:
    if args.endpoint_url:
        return True
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return False
    return bool(os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL"))


def client_config(service: str, args: argparse.Namespace, retry_mode: str | None = None) -> Any:
    """S3's pool holds a connection per thread (botocore's default is 10: more threads than that churn connections,
    "Connection pool is full"). Retries follow AWS's standard mode (3 attempts) unless AWS_RETRY_MODE or the
    profile says otherwise. A custom endpoint (emulator, stub) gets no host prefix: MWAA's GetEnvironment would
    otherwise go to api.<endpoint host>."""
    from botocore.config import Config

    options: dict[str, Any] = {"max_pool_connections": max(10, args.threads), "connect_timeout": CONNECT_TIMEOUT_S}
    if retry_mode is None:
        options["retries"] = {"mode": "standard"}
    if _endpoint_override(service, args):
        options["inject_host_prefix"] = False
    return Config(**options)


def _client(service: str, args: argparse.Namespace) -> Any:
    import boto3
    import botocore.session
    from botocore.exceptions import BotoCoreError, NoRegionError

    try:
        core = botocore.session.Session()
        session = boto3.session.Session(botocore_session=core,
                                        region_name=args.region or os.environ.get("AWS_REGION") or None)
        retry_mode = os.environ.get("AWS_RETRY_MODE") or core.get_scoped_config().get("retry_mode")
        config = client_config(service, args, retry_mode)
        return session.client(service, endpoint_url=args.endpoint_url or None, config=config)
    except NoRegionError as exc:
        raise sync.DeployError(f"no AWS region for {service.upper()}: pass --region or set AWS_REGION (the "
                               f"stack's region); {sync.NOTHING_UPLOADED}") from exc
    except BotoCoreError as exc:  # a missing profile, a broken config file
        raise sync.DeployError(f"cannot set up the {service.upper()} client: {exc}; check AWS_PROFILE and "
                               f"~/.aws/config; {sync.NOTHING_UPLOADED}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def cmd_build(args: argparse.Namespace) -> int:
    files = bundle.build(args.out)
    print(f"bundle: {args.out} ({len(files)} objects; sha256 of each in the deploy plan)")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    s3 = _client("s3", args)
    mwaa = _client("mwaa", args) if args.environment else None
    plan = sync.make_plan(s3, mwaa, args.bundle, args.bucket, args.environment, threads=args.threads)
    print(plan.render())
    if args.dry_run:
        print("dry run: nothing uploaded, deleted or updated")
        return 0
    if plan.empty:
        print("nothing to do")
        return 0
    versions = sync.apply(plan, s3, mwaa, args.bundle, wait=args.wait, timeout_s=args.wait_timeout,
                          threads=args.threads)
    for key in bundle.ENVIRONMENT_FILES:
        if key in versions:
            print(f"uploaded {key} version {versions[key]}")
    print(f"done: {len(plan.upload)} uploaded, {len(plan.delete)} deleted"
          + (", environment update started" if plan.environment_update and mwaa else ""))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    path = template.render_file(args.out, args.lambda_zip)
    print(f"template: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="filegate_deploy", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the MWAA bundle (dags/ with the library, plugins.zip, ...)")
    build.add_argument("--out", type=Path, default=bundle.DEFAULT_OUTPUT)
    build.set_defaults(run=cmd_build)

    deploy = commands.add_parser("deploy", help="sync a built bundle to the MWAA bucket and update the environment")
    deploy.add_argument("--bucket", required=True, help="the MWAA source bucket (stack output SourceBucketName)")
    deploy.add_argument("--environment", help="MWAA environment name; omit to only sync the bucket")
    deploy.add_argument("--bundle", type=Path, default=bundle.DEFAULT_OUTPUT)
    deploy.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    deploy.add_argument("--wait", action="store_true", help="after update-environment, wait until AVAILABLE")
    deploy.add_argument("--wait-timeout", type=float, default=3600.0)
    deploy.add_argument("--region")
    deploy.add_argument("--endpoint-url", help="S3/MWAA endpoint (tests and emulators)")
    deploy.add_argument("--threads", type=_positive, default=sync.DEFAULT_THREADS,
                        help=f"parallel S3 uploads (default {sync.DEFAULT_THREADS}); the S3 connection pool matches")
    deploy.set_defaults(run=cmd_deploy)

    render = commands.add_parser("template", help="render the CloudFormation template with one queue per feed")
    render.add_argument("--out", type=Path, default=template.DEFAULT_OUTPUT)
    render.add_argument("--lambda-zip", type=Path, default=template.DEFAULT_LAMBDA_ZIP)
    render.set_defaults(run=cmd_template)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not args.verbose:  # "Found credentials in environment variables." and the like
        logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        code: int = args.run(args)
    except (bundle.BundleError, sync.DeployError) as exc:
        log.debug("the failure in full", exc_info=exc)
        print(f"filegate_deploy: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in {"botocore", "boto3"}:
            raise
        log.debug("the failure in full", exc_info=exc)
        print(f"filegate_deploy: AWS call failed: {' '.join(str(exc).split())} (-v shows the traceback)",
              file=sys.stderr)
        return 1
    return code
