"""The chaos run's auditor: after the run settles, checks Filegate's guarantees from the sources of truth, not from
Filegate's own claims.

- S3 (moto) `raw/`: every file the run sent is there (matched by content: the object's MD5), and each raw object
  has exactly one `file` row;
- the status store: every row is terminal, with a reason where it is not `processed`, and its history is a legal
  path of the lifecycle (filegate.status.lifecycle) ending in its status; of files with the same bytes exactly one
  is processed, the others are `duplicate`; nothing is left `queued` or `processing`;
- the Postgres destination table: exactly the valid rows of the processed files (count and content hash per file);
- the stub API's own request log: each valid record of each processed file accepted exactly once, no other record;
- S3 `processed/`: exactly one output set (summary + Parquet) per processed file, and nothing else.

`collect` reads the sources (I/O); `audit` is a pure function of what the run sent and what was found, so the unit
tests can hand it crafted bad states and prove that every check can fail.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from workload import API_FEED, FEEDS, PG_FEED, PG_TABLE, PlannedFile, rows_hash

from filegate.status.lifecycle import ALLOWED, NEEDS_REASON, TERMINAL, Status
from filegate.storage import keys


@dataclass
class Observed:
    """What the sources of truth hold after the run."""

    raw_objects: dict[str, str] = field(default_factory=dict)  # raw key -> MD5 of its bytes
    files: list[dict[str, Any]] = field(default_factory=list)  # `file` rows: id, feed, raw_key, status, error
    events: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # file id -> events in order
    pg_rows: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, amount, label, _file_sha256
    api_records: list[dict[str, Any]] = field(default_factory=list)  # records the stub API accepted
    processed_keys: list[str] = field(default_factory=list)  # processed/<feed>/... object keys


@dataclass
class AuditReport:
    counts: dict[str, int]
    problems: dict[str, list[str]]  # check -> examples (at most a few per check)

    @property
    def passed(self) -> bool:
        return not any(self.counts[check] for check in FAILING_CHECKS)

    def summary(self) -> str:
        lines = [f"  {name:<28} {self.counts[name]}" for name in sorted(self.counts)]
        for check, examples in sorted(self.problems.items()):
            if examples:
                lines.append(f"  {check}: " + "; ".join(examples[:5]))
        return "\n".join(lines)


# Every count here must be 0 for the run to pass; the others are figures.
FAILING_CHECKS = ("lost", "duplicate_raw_objects", "unregistered", "duplicate_file_rows", "not_terminal",
                  "no_reason", "illegal_history", "wrong_outcome", "pg_missing_rows", "pg_duplicate_rows",
                  "pg_wrong_content", "api_missing_records", "api_duplicate_records", "api_unexpected_records",
                  "outputs_missing", "outputs_extra", "stuck")


def md5_of(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _feed_of(raw_key: str) -> str:
    return raw_key.split("/")[1]


def _amount(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}"


def legal_history(events: list[dict[str, Any]], final: str) -> str | None:
    """None if the events are a legal lifecycle path ending in `final`; else what is wrong."""
    if not events:
        return "no history"
    previous: str | None = None
    for number, event in enumerate(events):
        before, after = event["from_status"], event["to_status"]
        if number == 0 and before is not None:
            return f"starts from {before}, not from nothing"
        if number and before != previous:
            return f"event {number} starts from {before} but the file was {previous}"
        if before is not None and before != after and Status(after) not in ALLOWED[Status(before)]:
            return f"{before} -> {after} is not a lifecycle transition"
        previous = after
    if previous != final:
        return f"history ends {previous}, the file is {final}"
    return None


def audit(sent: list[PlannedFile], seen: Observed) -> AuditReport:
    problems: dict[str, list[str]] = defaultdict(list)
    counts: Counter[str] = Counter(dict.fromkeys(FAILING_CHECKS, 0))

    def flag(check: str, example: str, n: int = 1) -> None:
        counts[check] += n
        if len(problems[check]) < 5:
            problems[check].append(example)

    # 1. Everything sent reached raw/, once per send (matched by feed and content).
    sends: Counter[tuple[str, str]] = Counter((f.feed, md5_of(f.body)) for f in sent)
    by_content: dict[tuple[str, str], PlannedFile] = {(f.feed, md5_of(f.body)): f for f in sent}
    stored: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, md5 in seen.raw_objects.items():
        stored[(_feed_of(key), md5)].append(key)
    for content, times in sends.items():
        found = len(stored.get(content, []))
        if found < times:
            flag("lost", f"{by_content[content].name} ({content[0]}): sent {times}, {found} in raw/", times - found)
        elif found > times:
            flag("duplicate_raw_objects", f"{by_content[content].name}: sent {times}, {found} in raw/", found - times)
    for content, stored_keys in stored.items():
        if content not in sends:
            flag("duplicate_raw_objects", f"{stored_keys[0]}: not sent by the run", len(stored_keys))

    # 2. One terminal row per raw object, a reason where not processed, a legal history.
    rows_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in seen.files:
        rows_by_key[row["raw_key"]].append(row)
    for key in seen.raw_objects:
        found_rows = rows_by_key.get(key, [])
        if not found_rows:
            flag("unregistered", f"{key}: no file row")
        elif len(found_rows) > 1:
            flag("duplicate_file_rows", f"{key}: {len(found_rows)} rows", len(found_rows) - 1)
    for row in seen.files:
        status = row["status"]
        if status not in TERMINAL:
            flag("not_terminal", f"#{row['id']} {row['raw_key']} is {status}")
            if status in (Status.QUEUED, Status.PROCESSING):
                flag("stuck", f"#{row['id']} {row['raw_key']} left {status}")
        elif Status(status) in NEEDS_REASON and not (row.get("error") or "").strip():
            flag("no_reason", f"#{row['id']} is {status} without a reason")
        if wrong := legal_history(seen.events.get(row["id"], []), status):
            flag("illegal_history", f"#{row['id']}: {wrong}")

    # 3. Of the objects with the same bytes, exactly one is processed and the others are duplicates.
    processed: dict[str, tuple[dict[str, Any], PlannedFile]] = {}  # raw key -> (row, what was sent)
    for content, stored_keys in stored.items():
        planned = by_content.get(content)
        statuses = sorted(rows_by_key[k][0]["status"] for k in stored_keys if rows_by_key.get(k))
        if planned is None or not statuses:
            continue
        others = [s for s in statuses if s != Status.DUPLICATE]
        if len(others) != 1 and all(status in TERMINAL for status in statuses):
            flag("wrong_outcome", f"{planned.name} ({content[0]}): {statuses}, expected one processed, "
                                  f"{len(statuses) - 1} duplicate")
        elif others and others[0] in (Status.FAILED, Status.QUARANTINED):
            # Allowed (terminal, with a reason: checked above), but every valid file should come through.
            reason = next((r["error"] for k in stored_keys for r in rows_by_key.get(k, [])
                           if r["status"] == others[0]), "")
            flag("not_processed", f"{planned.name} ({content[0]}) {others[0]}: {(reason or '')[:160]}")
        for key in stored_keys:
            if rows_by_key.get(key) and rows_by_key[key][0]["status"] == Status.PROCESSED:
                processed[key] = (rows_by_key[key][0], planned)

    # A file left unfinished (already counted as stuck or not terminal) may have loaded or published before it
    # stopped: its rows and outputs are counted apart, not as duplicates.
    unfinished = {by_content[c].sha256 for c, ks in stored.items() if c in by_content
                  and any(r["status"] not in TERMINAL for k in ks for r in rows_by_key.get(k, []))}
    _audit_postgres(processed, unfinished, seen, flag)
    _audit_api(processed, seen, flag)
    _audit_outputs(processed, unfinished, seen, flag)
    counts["files_sent"] = len(sent)
    counts["raw_objects"] = len(seen.raw_objects)
    for status, n in Counter(row["status"] for row in seen.files).items():
        counts[f"status_{status}"] = n
    return AuditReport(dict(counts), {k: v for k, v in problems.items() if v})


def _audit_postgres(processed: dict[str, tuple[dict[str, Any], PlannedFile]], unfinished: set[str], seen: Observed,
                    flag: Any) -> None:
    by_sha: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row_id, amount, label, sha in seen.pg_rows:
        by_sha[sha].append((int(row_id), _amount(amount), label))
    wanted = {planned.sha256: planned for _, planned in processed.values() if planned.feed == PG_FEED}
    for sha, planned in wanted.items():
        expected = [(r.id, r.amount, r.label) for r in planned.valid_rows]
        found = by_sha.get(sha, [])
        if len(found) < len(expected):
            flag("pg_missing_rows", f"{planned.name}: {len(found)} of {len(expected)} rows", len(expected) - len(found))
        elif len(found) > len(expected):
            flag("pg_duplicate_rows", f"{planned.name}: {len(found)} rows, {len(expected)} valid",
                 len(found) - len(expected))
        elif rows_hash(found) != rows_hash(expected):
            flag("pg_wrong_content", f"{planned.name}: the rows differ from the file's valid rows")
    for sha, found in by_sha.items():
        if sha in unfinished:
            flag("pg_rows_of_unfinished_files", f"{len(found)} row(s) of sha {sha[:12]}", len(found))
        elif sha not in wanted:
            flag("pg_duplicate_rows", f"{len(found)} row(s) of a file that is not processed (sha {sha[:12]})",
                 len(found))


def _audit_api(processed: dict[str, tuple[dict[str, Any], PlannedFile]], seen: Observed, flag: Any) -> None:
    received = Counter(int(r["id"]) for r in seen.api_records)
    content = {int(r["id"]): (_amount(r["amount"]), str(r["label"])) for r in seen.api_records}
    expected: dict[int, tuple[str, str]] = {}
    for _, planned in processed.values():
        if planned.feed == API_FEED:
            expected.update({r.id: (r.amount, r.label) for r in planned.valid_rows})
    for row_id, values in expected.items():
        if not received[row_id]:
            flag("api_missing_records", f"record {row_id} never accepted")
        elif content[row_id] != values:
            flag("api_missing_records", f"record {row_id} accepted as {content[row_id]}, sent {values}")
    for row_id, times in received.items():
        if row_id not in expected:
            flag("api_unexpected_records", f"record {row_id}: not a valid row of a processed file", times)
        elif times > 1:
            flag("api_duplicate_records", f"record {row_id} accepted {times} times", times - 1)


def _audit_outputs(processed: dict[str, tuple[dict[str, Any], PlannedFile]], unfinished: set[str], seen: Observed,
                   flag: Any) -> None:
    """processed/<feed>/_summaries/<stem>.json and <partition>/<stem>.parquet, stem = name + sha256 prefix."""
    summaries: Counter[tuple[str, str]] = Counter()
    parquet: Counter[tuple[str, str]] = Counter()
    for key in seen.processed_keys:
        feed, name = key.split("/")[1], posixpath.basename(key)
        if "/_summaries/" in key and name.endswith(".json"):
            summaries[(feed, name.removesuffix(".json"))] += 1
        elif name.endswith(".parquet"):
            parquet[(feed, name.removesuffix(".parquet"))] += 1
        else:
            flag("outputs_extra", f"{key}: not an output Filegate writes")
    wanted, left = set(), set()
    for key, (_, planned) in processed.items():
        stem = (planned.feed, keys.file_stem(posixpath.basename(key), planned.sha256))
        wanted.add(stem)
        if summaries[stem] != 1 or not parquet[stem]:
            flag("outputs_missing", f"{key}: {summaries[stem]} summary, {parquet[stem]} Parquet file(s)")
    for stem in (set(summaries) | set(parquet)) - wanted:
        if stem[1].rsplit("-", 1)[-1] in {sha[:12] for sha in unfinished}:
            left.add(stem)
            continue
        flag("outputs_extra", f"processed/{stem[0]}/…/{stem[1]}: outputs of a file that is not processed")
    if left:
        flag("outputs_of_unfinished_files", f"{len(left)} output set(s) of files left unfinished", len(left))


# -- collecting from the sources -----------------------------------------------------------------------------------

def collect(s3: Any, bucket: str, db_url: str, stub_log: Path) -> Observed:
    import psycopg

    seen = Observed()
    paginator = s3.get_paginator("list_objects_v2")
    for feed in FEEDS:
        for page in paginator.paginate(Bucket=bucket, Prefix=keys.raw_prefix(feed)):
            for obj in page.get("Contents", []):
                etag = obj["ETag"].strip('"')
                if "-" in etag:  # a multipart upload's ETag is not the MD5 of the bytes
                    etag = md5_of(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                seen.raw_objects[obj["Key"]] = etag
        for page in paginator.paginate(Bucket=bucket, Prefix=keys.processed_prefix(feed)):
            seen.processed_keys += [obj["Key"] for obj in page.get("Contents", [])]
    with psycopg.connect(db_url) as conn:
        columns = ("id", "feed", "raw_key", "status", "error")
        for values in conn.execute("SELECT id, feed, raw_key, status, error FROM file WHERE feed = ANY(%s)",
                                   (list(FEEDS),)):
            seen.files.append(dict(zip(columns, values, strict=True)))
        for file_id, before, after in conn.execute(
                "SELECT e.file_id, e.from_status, e.to_status FROM file_event e JOIN file f ON f.id = e.file_id "
                "WHERE f.feed = ANY(%s) ORDER BY e.id", (list(FEEDS),)):
            seen.events.setdefault(file_id, []).append({"from_status": before, "to_status": after})
        table = conn.execute("SELECT to_regclass(%s)", (f"feeds.{PG_TABLE}",)).fetchone()
        if table and table[0]:
            seen.pg_rows = [(int(i), str(a), str(lbl), sha) for i, a, lbl, sha in conn.execute(
                f"SELECT id, amount, label, _file_sha256 FROM feeds.{PG_TABLE}")]
    seen.api_records = accepted_records(stub_log)
    return seen


def accepted_records(stub_log: Path) -> list[dict[str, Any]]:
    """Records of every request the stub API accepted on the chaos endpoint (replays are not new records)."""
    from workload import API_ENDPOINT

    records: list[dict[str, Any]] = []
    if not stub_log.exists():
        return records
    for line in stub_log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("path") != API_ENDPOINT or entry.get("outcome") != "accepted":
            continue
        body = entry.get("body")
        records += body if isinstance(body, list) else (body or {}).get("records", [])
    return records
