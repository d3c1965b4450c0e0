"""What the FTP and SFTP pickup tests share: dropping files on a server's folder, and reading back what the
pickup did (status rows, their history, raw/ objects, leftover multipart uploads)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from filegate.ingestion.retry import RetryPolicy
from filegate.status.store import Actor

DAY = date(2026, 11, 22)
FAST = RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.1)
OLD = (time.time() - 3600, time.time() - 3600)


def actor(dag_id: str) -> Actor:
    return Actor(dag_id=dag_id, run_id="test-run", task_id="copy_files", try_number=1)


def drop(folder: Path, name: str, body: bytes, *, old: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    if old:
        os.utime(path, OLD)
    return path


def rows(db_url: str, feed: str) -> dict[str, dict[str, Any]]:
    """The feed's status rows by remote path (the latest row wins when a path was delivered twice)."""
    return {r["source_path"]: r for r in rows_all(db_url, feed)}


def rows_all(db_url: str, feed: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM file WHERE feed = %s ORDER BY id", (feed,)).fetchall()


def history(db_url: str, file_id: int) -> list[str]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        events = conn.execute("SELECT to_status FROM file_event WHERE file_id = %s ORDER BY id", (file_id,))
        return [e["to_status"] for e in events.fetchall()]


def raw_keys(s3: Any, bucket: str, feed: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"raw/{feed}/").get("Contents", []))


def no_multipart_uploads(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


@contextmanager
def still_growing(path: Path) -> Iterator[None]:
    """A writer appending to `path` every 0.2 s while the block runs, as a partner's upload in progress does."""
    stop = threading.Event()

    def writer() -> None:
        with path.open("ab") as out:
            while not stop.is_set():
                out.write(b"1\n" * 100)
                out.flush()
                time.sleep(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
