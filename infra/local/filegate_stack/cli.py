"""`filegate-stack start|stop|status|env`: run the local stack from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from filegate_stack.stack import COMPONENT_NAMES, Stack, StackError, normalize

logger = logging.getLogger(__name__)


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part.strip()]


def _print_urls(stack: Stack, names: list[str]) -> None:
    for name in names:
        urls = stack.urls()[name]
        detail = "  ".join(f"{key}={value}" for key, value in urls.items())
        print(f"  {name:<9} {detail}")


def cmd_start(stack: Stack, args: argparse.Namespace) -> int:
    only = normalize(_split(args.only)) if args.only else list(COMPONENT_NAMES)
    without = set(normalize(_split(args.without)))
    names = [name for name in only if name not in without]
    try:
        outcome = stack.start(names)
    except StackError as exc:
        print(f"filegate-stack: {exc.component} did not come up: {exc}", file=sys.stderr)
        print(exc.log, file=sys.stderr)
        print("Components that did start keep running; `filegate-stack stop` stops them.", file=sys.stderr)
        return 1
    print(f"Filegate local stack ({stack.home}):")
    for name in names:
        print(f"  {name:<9} {outcome.get(name, '')}")
    _print_urls(stack, names)
    print(f"Client environment: source {stack.ctx.paths.stack_env}")
    if "airflow" in names:
        cfg = stack.ctx.config
        print(
            f"Airflow UI: http://127.0.0.1:{stack.ports.airflow}  "
            f"(log in as {cfg.airflow_user} / {cfg.airflow_password})"
        )
    return 0


def cmd_stop(stack: Stack, _args: argparse.Namespace) -> int:
    leftovers = stack.stop()
    if leftovers:
        print(f"filegate-stack: processes left behind: {leftovers}", file=sys.stderr)
        return 1
    print("Filegate local stack stopped; no processes left.")
    return 0


def cmd_status(stack: Stack, args: argparse.Namespace) -> int:
    status = stack.status()
    if args.json:
        print(json.dumps({"home": str(stack.home), "ports": stack.ports.to_json(), "components": status}, indent=2))
    else:
        for name, info in status.items():
            pids = ",".join(str(p) for p in info["pids"].values() if p) or "-"
            urls = "  ".join(f"{k}={v}" for k, v in info["urls"].items())
            print(f"{name:<9} {info['state']:<8} pids={pids:<24} {urls}")
    return 0 if any(info["running"] for info in status.values()) else 3


def cmd_env(stack: Stack, _args: argparse.Namespace) -> int:
    from filegate_stack.client_env import render_exports

    sys.stdout.write(render_exports(stack.env()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="filegate-stack", description="Filegate's local stack (no Docker)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start components (default: all)")
    start.add_argument("--without", help=f"comma-separated components to skip ({','.join(COMPONENT_NAMES)})")
    start.add_argument("--only", help="comma-separated components to start")
    start.set_defaults(func=cmd_start)
    sub.add_parser("stop", help="stop everything and check nothing is left").set_defaults(func=cmd_stop)
    status = sub.add_parser("status", help="what is running (exit 3 if nothing)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    sub.add_parser("env", help="print `export` lines for clients").set_defaults(func=cmd_env)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        stack = Stack()
        code: int = args.func(stack, args)
    except ValueError as exc:
        parser.error(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
