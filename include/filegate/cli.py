"""`filegate` command line: the library without Airflow, for people working on feeds and operating runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from filegate.settings import load_settings

STATUS_COLUMNS = ("id", "feed", "name", "status", "created_at", "updated_at", "error")


def _store() -> Any:
    from filegate.status.store import StatusStore

    dsn = load_settings().db_url
    if not dsn:
        sys.exit("filegate: no status store configured: set FILEGATE_DB_URL or start the local stack (make run)")
    return StatusStore.connect(dsn)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def cmd_status(args: argparse.Namespace) -> int:
    rows = _store().list_files(feed=args.feed, status=args.status, limit=args.limit)
    if args.json:
        fields = ("id", "feed", "name", "status", "error", "raw_key", "sha256", "size_bytes", "created_at",
                  "updated_at", "finished_at", "outputs")
        print(json.dumps([_jsonable({k: r[k] for k in fields}) for r in rows], indent=2, default=str))
        return 0
    if not rows:
        print("no files")
        return 0
    print(f"{'id':>5}  {'feed':<14} {'status':<12} {'updated':<19}  name / error")
    for r in rows:
        print(f"{r['id']:>5}  {r['feed']:<14} {r['status']:<12} {r['updated_at']:%Y-%m-%d %H:%M:%S}  {r['name']}")
        if r["error"]:
            print(f"{'':>5}  {'':<14} {'':<12} {'':<19}  ↳ {r['error']}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    store = _store()
    row = store.get_file(args.file_id)
    if row is None:
        print(f"no file with id {args.file_id}", file=sys.stderr)
        return 1
    document = {"file": _jsonable(row), "history": [_jsonable(e) for e in store.history(args.file_id)],
                "api_calls": [_jsonable(c) for c in store.api_calls(args.file_id)],
                "quality": store.quality(args.file_id)}
    print(json.dumps(document, indent=2, default=str))
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    applied = _store().migrate()
    print("applied: " + ", ".join(applied) if applied else "status store is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filegate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    status = sub.add_parser("status", help="list files with their feed, status, timestamps and error")
    status.add_argument("--json", action="store_true", help="print a JSON list of objects")
    status.add_argument("--feed")
    status.add_argument("--status")
    status.add_argument("--limit", type=int, default=1000)
    status.set_defaults(func=cmd_status)

    history = sub.add_parser("history", help="one file's history, API calls and quality result as JSON")
    history.add_argument("file_id", type=int)
    history.set_defaults(func=cmd_history)

    db = sub.add_parser("db", help="status store administration")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_db_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
