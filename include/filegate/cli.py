"""`filegate` command line: the library without Airflow, for people working on feeds and operating runs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from filegate.settings import load_settings

FORMATS = ("csv", "tsv", "json", "ndjson", "fixed_width", "xlsx")
# In a checkout, `make run` leaves the local stack's variables here: `filegate status` works without sourcing it.
LOCAL_STACK_ENV = Path(__file__).resolve().parents[2] / ".filegate" / "stack.env"
STATUS_COLUMNS = ("id", "feed", "name", "status", "created_at", "updated_at", "error")


@contextmanager
def local_stack_env(env_file: Path) -> Iterator[None]:
    """For the command's duration, the variables of the local stack's env file (`export NAME=value` lines)
    that the environment does not set; the environment is restored afterwards (tests call main() in-process)."""
    added = []
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            name, sep, value = line.removeprefix("export ").partition("=")
            if sep and name.isidentifier() and not os.environ.get(name):
                os.environ[name] = value.strip().strip("'\"")
                added.append(name)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _store() -> Any:
    from filegate.status.store import StatusStore

    dsn = load_settings().db_url
    if not dsn:
        sys.exit("filegate: no status store configured: set FILEGATE_DB_URL or start the local stack (make run)")
    return StatusStore.connect(dsn)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def cmd_status(args: argparse.Namespace) -> int:
    rows = _store().reads.recent_files(feed=args.feed, status=args.status, limit=args.limit)
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
    row = store.reads.get_file(args.file_id)
    if row is None:
        print(f"no file with id {args.file_id}", file=sys.stderr)
        return 1
    document = {"file": _jsonable(row), "history": [_jsonable(e) for e in store.reads.history(args.file_id)],
                "api_calls": [_jsonable(c) for c in store.reads.api_calls(args.file_id)],
                "quality": store.reads.quality(args.file_id)}
    print(json.dumps(document, indent=2, default=str))
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    applied = _store().migrate()
    print("applied: " + ", ".join(applied) if applied else "status store is up to date")
    return 0


def _contract_for(path: Path, feed: str | None, fmt: str | None) -> Any:
    """The feed's contract, or an ad-hoc one (inferred schema, the given or detected format)."""
    from pydantic import ValidationError

    from filegate.contracts import ContractError, get_contract
    from filegate.contracts.model import Contract

    if feed:
        return get_contract(feed)
    try:
        return Contract.model_validate({"name": "adhoc", "description": f"ad-hoc look at {path.name}",
                                        "format": {"type": fmt or "auto"}, "thresholds": {"max_rejected_share": 1.0}})
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ContractError(f"--format {fmt}: {problems} (use --feed NAME for a feed's settings)") from exc


def cmd_parse(args: argparse.Namespace) -> int:
    """Streams the records as one JSON array: memory stays bounded, whatever the file's size."""
    import tempfile

    from filegate.parsers import open_reader, prepare

    path = Path(args.file)
    contract = _contract_for(path, args.feed, args.format)
    fmt = contract.format
    names = [c.name for c in contract.columns] or None
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="filegate-parse-") as tmp:
        reader, _ = open_reader(prepare(path, fmt, Path(tmp)), fmt, names=names)
        header = reader.read_header()
        first = True
        out.write("[")
        for batch in reader.batches():
            columns = [batch.column(name).to_pylist() for name in header]
            for values in zip(*columns, strict=True):
                out.write(("\n" if first else ",\n") + json.dumps(dict(zip(header, values, strict=True)),
                                                                  ensure_ascii=False))
                first = False
        out.write("\n]\n" if not first else "]\n")
    for bad in reader.bad_rows[:20]:
        where = f"line {bad.line}" if bad.line else "a row"
        print(f"filegate: skipped {where}: {bad.reason}", file=sys.stderr)
    if len(reader.bad_rows) > 20:
        print(f"filegate: … {len(reader.bad_rows) - 20} more skipped rows", file=sys.stderr)
    return 0


def _run_engine(path: Path, contract: Any, work_dir: Path) -> Any:
    from datetime import date

    from filegate.pipeline.engine import run_engine

    return run_engine(contract, path, arrived=date.today(), work_dir=work_dir, name=path.name)


def cmd_profile(args: argparse.Namespace) -> int:
    import tempfile

    path = Path(args.file)
    contract = _contract_for(path, args.feed, args.format)
    with tempfile.TemporaryDirectory(prefix="filegate-profile-") as tmp:
        result = _run_engine(path, contract, Path(tmp))
    print(json.dumps({"file": str(path), "feed": args.feed, **result.summary()}, indent=2, default=str))
    if result.status != "processed":
        print(f"filegate: {path.name}: {result.status}: {result.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    import csv
    import tempfile

    from filegate.profiling.profile import inert

    path = Path(args.file)
    contract = _contract_for(path, args.feed, None)
    with tempfile.TemporaryDirectory(prefix="filegate-validate-") as tmp:
        result = _run_engine(path, contract, Path(tmp))
        examples: list[tuple[str, str]] = []
        if result.rejected_file is not None:
            with result.rejected_file.open(newline="", encoding="utf-8") as fh:
                rows = csv.reader(fh)
                next(rows, None)
                for record in rows:  # by position: the file's own header may hold a _row or _reasons column
                    examples.append((record[0] or "?", record[-1]))
                    if len(examples) >= args.examples:
                        break
    verdict = "PASSED" if result.status == "processed" else "FAILED"
    rows = result.summary()["rows"]
    print(f"{path.name} against feed {contract.name}: {verdict} ({result.status})")
    if result.reason:
        print(f"  reason: {inert(result.reason)}")
    print(f"  rows: {rows['total']} total, {rows['valid']} valid, {rows['rejected']} rejected "
          f"({rows['rejected_percent']}%; the feed allows {100 * contract.thresholds.max_rejected_share:g}%)")
    if result.source:
        print("  read as: " + ", ".join(f"{k} {v!r}" for k, v in result.source.items() if v))
    if result.inferred_schema:
        print("  inferred schema: " + ", ".join(f"{k} {v['type']}{'' if v['nullable'] else ' not null'}"
                                               for k, v in result.inferred_schema.items()))
    if result.issues:
        print("  issues:")
        for issue in result.issues:
            samples = ", ".join(str(r) for r in issue["sample_rows"])
            print(f"    {inert(str(issue['column'])):<20} {issue['rule']:<14} {issue['count']:>8}  "
                  f"{issue['percent']:>7}%" + (f"  rows {samples}" if samples else ""))
    if examples:
        print("  first rejected rows:")
        for row, reasons in examples:
            print(f"    row {row}: {inert(reasons)}")
    return 0 if result.status == "processed" else 1


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

    parse = sub.add_parser("parse", help="print a file's records as text, exactly as written (no casting)")
    parse.add_argument("file")
    which = parse.add_mutually_exclusive_group()
    which.add_argument("--feed", help="read with this feed's format settings")
    which.add_argument("--format", choices=sorted(FORMATS), help="default: detected from the name and bytes")
    parse.add_argument("--output", choices=["json"], default="json")
    parse.set_defaults(func=cmd_parse)

    profile = sub.add_parser("profile", help="print a file's summary JSON: rows, column statistics, issues")
    profile.add_argument("file")
    which = profile.add_mutually_exclusive_group()
    which.add_argument("--feed", help="validate against this feed's contract (default: infer the schema)")
    which.add_argument("--format", choices=sorted(FORMATS))
    profile.set_defaults(func=cmd_profile)

    validate = sub.add_parser("validate", help="check a file against a feed's contract; non-zero exit if it fails")
    validate.add_argument("file")
    validate.add_argument("--feed", required=True)
    validate.add_argument("--examples", type=int, default=10, help="rejected rows to show")
    validate.set_defaults(func=cmd_validate)

    db = sub.add_parser("db", help="status store administration")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_db_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from filegate.contracts import ContractError
    from filegate.parsers import ParseError
    from filegate.storage.database import ConnectError

    args = build_parser().parse_args(argv)
    env_file = Path(os.environ["FILEGATE_HOME"]) / "stack.env" if os.environ.get("FILEGATE_HOME") else LOCAL_STACK_ENV
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with local_stack_env(env_file):
            return int(args.func(args) or 0)
    except (ParseError, ContractError) as exc:
        print(f"filegate: {getattr(args, 'file', '')}: {exc}" if getattr(args, "file", None) else f"filegate: {exc}",
              file=sys.stderr)
        return 1
    except ConnectError as exc:  # names where the DSN came from, never its value
        print(f"filegate: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"filegate: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `filegate parse big.csv | head`
        return 0
    except Exception as exc:  # a person at a terminal gets one line, not a traceback (-v logs the details)
        logging.getLogger("filegate").debug("unexpected error", exc_info=True)
        print(f"filegate: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
