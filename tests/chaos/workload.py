"""What the chaos run sends: the feeds' contracts and every file's bytes, with what a correct Filegate must make of it.

The workload is the auditor's source of truth for intent: for each file it knows the rows that are valid (so the
Postgres table and the stub API can be checked row by row) and which files share content (exactly one of them
may be processed, the others end `duplicate`). Row ids are unique across the whole run, so a row found twice
anywhere is a duplicate, never a coincidence.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

PG_FEED, API_FEED, FTP_FEED, UPLOAD_FEED = "chaos_pg", "chaos_api", "chaos_ftp", "chaos_up"
FEEDS = (PG_FEED, API_FEED, FTP_FEED, UPLOAD_FEED)
PG_TABLE = "chaos_rows"
API_ENDPOINT = "/v1/chaos"
LAMBDA_THRESHOLD_BYTES = 150_000  # files over this size are processed on Lambda (contract `heavy`)
HEADER = "id,amount,label"

_COLUMNS = """
schema:
  columns:
    - {name: id, type: int, nullable: false, unique: true, min: 1}
    - {name: amount, type: decimal, scale: 2, nullable: false, min: 0}
    - {name: label, type: string, nullable: false}
thresholds: {max_rejected_share: 0.5}
"""
CONTRACTS = {
    PG_FEED: f"""
name: {PG_FEED}
description: Chaos run feed, CSV straight to S3, loaded into Postgres; large files run on Lambda.
owner: chaos
source: {{kind: s3, pattern: "*.csv", sensed_schedule: "@daily"}}
format: {{type: csv}}
{_COLUMNS}
heavy: {{size_threshold_bytes: {LAMBDA_THRESHOLD_BYTES}}}
destinations:
  postgres: {{table: {PG_TABLE}, natural_key: [id]}}
""",
    API_FEED: f"""
name: {API_FEED}
description: Chaos run feed, CSV straight to S3, records posted to the stub API.
owner: chaos
source: {{kind: s3, pattern: "*.csv", sensed_schedule: "@daily"}}
format: {{type: csv}}
{_COLUMNS}
destinations:
  api: {{endpoint: {API_ENDPOINT}, batch_size: 25}}
""",
    FTP_FEED: f"""
name: {FTP_FEED}
description: Chaos run feed, CSV collected from the stack's FTP server.
owner: chaos
source:
  kind: ftp
  pattern: "*.csv"
  ftp: {{directory: /chaos, stable_seconds: 1, after_download: archive, schedule: "* * * * *"}}
format: {{type: csv}}
{_COLUMNS}
""",
    UPLOAD_FEED: f"""
name: {UPLOAD_FEED}
description: Chaos run feed, CSV sent through the upload endpoint.
owner: chaos
source: {{kind: upload, pattern: "*.csv"}}
format: {{type: csv}}
{_COLUMNS}
""",
}


@dataclass(frozen=True)
class Row:
    id: int
    amount: str  # as written, two decimals
    label: str
    valid: bool


@dataclass
class PlannedFile:
    """One file the run sends; `group` names files with identical bytes (the first one sent is the original)."""

    feed: str
    name: str
    day: date  # the raw key's date (S3 feeds); uploads and FTP pickups are dated by Filegate on arrival
    rows: list[Row]
    group: str = ""
    body: bytes = b""
    raw_key: str | None = None  # known once sent (uploads get theirs from the endpoint)
    sent_at: float | None = None
    note: str = ""

    @property
    def valid_rows(self) -> list[Row]:
        return [r for r in self.rows if r.valid]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def render(rows: list[Row]) -> bytes:
    lines = [HEADER]
    for row in rows:
        amount = row.amount if row.valid else f"-{row.amount}"  # min: 0 rejects a negative amount
        lines.append(f"{row.id},{amount},{row.label}")
    return ("\n".join(lines) + "\n").encode()


def rows_hash(rows: list[tuple[int, str, str]]) -> str:
    """Order-free content hash of (id, amount, label) rows, as the auditor recomputes it from a destination."""
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(f"{row[0]}|{row[1]}|{row[2]}\n".encode())
    return digest.hexdigest()


@dataclass
class Workload:
    files: list[PlannedFile] = field(default_factory=list)

    def of_feed(self, feed: str) -> list[PlannedFile]:
        return [f for f in self.files if f.feed == feed]

    def bursts(self, size: int) -> Iterator[list[PlannedFile]]:
        for start in range(0, len(self.files), size):
            yield self.files[start : start + size]


def plan(total: int, *, seed: int, today: date, large_files: int = 3, days: int = 3) -> Workload:
    """`total` small files spread over the four feeds (S3 feeds dated over the last `days` days, for the backfill),
    plus `large_files` Lambda-sized ones on the Postgres feed, one content sent under two names per S3 feed, and one
    upload sent twice under the same name. About one file in ten has an invalid row (processed, that row rejected)."""
    rng = random.Random(seed)
    next_id = iter(range(1, 10**9))
    workload = Workload()
    shares = {PG_FEED: 0.35, API_FEED: 0.35, FTP_FEED: 0.15, UPLOAD_FEED: 0.15}

    def rows(count: int, *, invalid: int = 0) -> list[Row]:
        made = [Row(next(next_id), f"{rng.randint(0, 99999) / 100:.2f}", f"r{rng.randint(0, 10**6)}", True)
                for _ in range(count)]
        for row_index in rng.sample(range(count), invalid):
            made[row_index] = Row(made[row_index].id, made[row_index].amount, made[row_index].label, False)
        return made

    counts = {feed: max(1, round(total * share)) for feed, share in shares.items()}
    counts[PG_FEED] += total - sum(counts.values())
    for feed, count in counts.items():
        for n in range(count):
            day = today - timedelta(days=n % days) if feed in (PG_FEED, API_FEED) else today
            size = rng.randint(3, 8)
            made = rows(size, invalid=1 if rng.random() < 0.1 else 0)
            workload.files.append(PlannedFile(feed, f"{feed}-{n:06d}.csv", day, made))
    rng.shuffle(workload.files)
    for n in range(large_files):
        big = PlannedFile(PG_FEED, f"large-{n}.csv", today, rows(LAMBDA_THRESHOLD_BYTES // 20 + 2000),
                          note="large: routed to Lambda")
        workload.files.insert(rng.randrange(len(workload.files) + 1), big)
    for planned in workload.files:
        planned.body = render(planned.rows)
        planned.group = planned.sha256
    # The same bytes under a second name (S3 feeds): one is processed, the other ends `duplicate`.
    for feed in (PG_FEED, API_FEED):
        original = next(f for f in workload.files if f.feed == feed and not f.note)
        copy = PlannedFile(feed, f"copy-of-{original.name}", original.day, original.rows, original.group,
                           original.body, note=f"same content as {original.name}")
        workload.files.append(copy)
    # One upload sent twice under the same name: the endpoint keeps both (suffix), the second is a duplicate.
    first = next(f for f in workload.files if f.feed == UPLOAD_FEED)
    workload.files.append(PlannedFile(UPLOAD_FEED, first.name, first.day, first.rows, first.group, first.body,
                                      note=f"uploaded twice as {first.name}"))
    return workload
