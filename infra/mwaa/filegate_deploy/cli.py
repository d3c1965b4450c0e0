"""`python -m filegate_deploy build | deploy | template`: the MWAA bundle, its deploy, the CloudFormation template."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from filegate_deploy import bundle, sync, template


def _client(service: str, args: argparse.Namespace) -> Any:
    import boto3

    session = boto3.session.Session(region_name=args.region or os.environ.get("AWS_REGION") or None)
    return session.client(service, endpoint_url=args.endpoint_url or None)


def cmd_build(args: argparse.Namespace) -> int:
    files = bundle.build(args.out)
    print(f"bundle: {args.out} ({len(files)} objects; sha256 of each in the deploy plan)")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    s3 = _client("s3", args)
    mwaa = _client("mwaa", args) if args.environment else None
    plan = sync.make_plan(s3, mwaa, args.bundle, args.bucket, args.environment)
    print(plan.render())
    if args.dry_run:
        print("dry run: nothing uploaded, deleted or updated")
        return 0
    if plan.empty:
        print("nothing to do")
        return 0
    versions = sync.apply(plan, s3, mwaa, args.bundle, wait=args.wait, timeout_s=args.wait_timeout)
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
    deploy.set_defaults(run=cmd_deploy)

    render = commands.add_parser("template", help="render the CloudFormation template with one queue per feed")
    render.add_argument("--out", type=Path, default=template.DEFAULT_OUTPUT)
    render.add_argument("--lambda-zip", type=Path, default=template.DEFAULT_LAMBDA_ZIP)
    render.set_defaults(run=cmd_template)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        code: int = args.run(args)
    except (bundle.BundleError, sync.DeployError) as exc:
        print(f"filegate_deploy: {exc}", file=sys.stderr)
        return 1
    return code
