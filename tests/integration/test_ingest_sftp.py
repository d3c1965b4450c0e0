"""SFTP pickup against real servers on loopback: the local stack's asyncssh server (password and key login, a
generated host key pinned by the client), plus asyncssh servers started here that drop the connection
mid-transfer on purpose, moto S3 and the Postgres status store."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import pytest
from pickup_checks import DAY, FAST, actor, drop, history, no_multipart_uploads, raw_keys, rows, rows_all, still_growing

from filegate.contracts.model import Contract
from filegate.ingestion.pickup import list_ready, pick_up
from filegate.ingestion.retry import HostKeyRefused, RetryPolicy
from filegate.ingestion.sftp import SftpEndpoint, SftpSession, fingerprint, parse_host_key
from filegate.status.store import StatusStore
from filegate_stack.sftp_server import serve
from filegate_stack.ssh_keys import SshKeys, ensure_ssh_keys

pytestmark = pytest.mark.integration
ACTOR = actor("ingest_sftp_test")
ROOT = Path(__file__).resolve().parents[2]
# A 200 MB copy must stay far below the file's size: about one S3 part (8 MiB) and one read window (4 MiB) on top
# of the interpreter with boto3, paramiko and psycopg loaded.
SMALL_BIG_MB = 200
PEAK_GROWTH_BOUND_MB = 80
BIG_MB = int(os.environ.get("FILEGATE_SFTP_BIG_MB", "0"))  # e.g. 2048 for the full-size check


def contract(feed: str, directory: str, **sftp: Any) -> Contract:
    return Contract.model_validate({
        "name": feed, "description": "SFTP pickup test feed",
        "source": {"kind": "sftp", "pattern": "*.csv", "sftp": {"directory": directory, "stable_seconds": 0, **sftp}},
    })


@pytest.fixture(scope="module")
def s3(local_stack) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


@pytest.fixture(scope="module")
def keys(local_stack) -> SshKeys:
    return ensure_ssh_keys(local_stack.stack.ctx.paths.ssh)


@pytest.fixture(scope="module")
def sftp_root(local_stack) -> Path:
    return local_stack.stack.ctx.paths.sftp_root


def endpoint(local_stack, keys: SshKeys, *, port: int | None = None, key_login: bool = False,
             host_key: str | None = None) -> SftpEndpoint:
    config = local_stack.stack.ctx.config
    return SftpEndpoint(host="127.0.0.1", host_key=host_key or keys.host_public,
                        port=port or local_stack.stack.ports.sftp, user=config.sftp_user,
                        password=None if key_login else config.sftp_password,
                        private_key=keys.client_private_text if key_login else None, timeout_s=10,
                        conn_id="filegate_sftp")


def run_pickup(local_stack, keys, s3, store, feed: Contract, *, port: int | None = None, last_try: bool = True,
               key_login: bool = False, policy: RetryPolicy = FAST):
    ep = endpoint(local_stack, keys, port=port, key_login=key_login)
    with SftpSession(ep) as session:
        listing = list_ready(session, feed, sleep=time.sleep)
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     last_try=last_try, policy=policy, today=DAY, sleep=lambda _s: None)
    return listing, report


@pytest.mark.parametrize("key_login", [False, True], ids=["password", "private-key"])
def test_normal_pickup_archives_and_registers(local_stack, keys, sftp_root, s3, store, key_login: bool) -> None:
    feed = contract(f"sftp_pick_{'key' if key_login else 'pw'}", f"/in_{key_login}")
    folder = sftp_root / f"in_{key_login}"
    drop(folder, "a.csv", b"id\n1\n")
    drop(folder, "b.csv", b"id\n2\n" * 1000)
    drop(folder, "ignored.txt", b"not matching the glob")
    (folder / "dir.csv").mkdir()  # a directory matching the glob is not a file to pick up
    _, report = run_pickup(local_stack, keys, s3, store, feed, key_login=key_login)
    assert len(report.downloaded) == 2 and not report.failed and not report.retry
    assert raw_keys(s3, local_stack.bucket, feed.name) == [f"raw/{feed.name}/2026/11/22/a.csv",
                                                          f"raw/{feed.name}/2026/11/22/b.csv"]
    body = s3.get_object(Bucket=local_stack.bucket, Key=f"raw/{feed.name}/2026/11/22/b.csv")["Body"].read()
    assert body == b"id\n2\n" * 1000
    row = rows(local_stack.db_url, feed.name)[f"/in_{key_login}/a.csv"]
    assert row["status"] == "downloaded" and row["source"] == "sftp" and row["size_bytes"] == 5
    assert row["sha256"] == hashlib.sha256(b"id\n1\n").hexdigest()
    assert history(local_stack.db_url, row["id"]) == ["pending", "downloaded"]
    assert sorted(p.name for p in folder.iterdir()) == ["archive", "dir.csv", "ignored.txt"]
    assert sorted(p.name for p in (folder / "archive").iterdir()) == ["a.csv", "b.csv"]
    listing, again = run_pickup(local_stack, keys, s3, store, feed, key_login=key_login)
    assert listing.ready == [] and again.downloaded == []
    with SftpSession(endpoint(local_stack, keys)) as session:  # a directory not created yet holds nothing
        assert session.list_files("/not_there_yet", "*.csv") == []


def test_wrong_host_key_is_refused_with_both_fingerprints(local_stack, keys, sftp_root, s3, store,
                                                          tmp_path: Path) -> None:
    feed = contract("sftp_hostkey", "/hostkey")
    drop(sftp_root / "hostkey", "a.csv", b"id\n1\n")
    impostor = ensure_ssh_keys(tmp_path / "other").host_public  # what a man in the middle would present
    wrong = endpoint(local_stack, keys, host_key=impostor)
    with pytest.raises(HostKeyRefused) as refused:
        SftpSession(wrong).connect()
    reason = str(refused.value)
    port = local_stack.stack.ports.sftp
    assert f"[127.0.0.1]:{port}" in reason and "'filegate_sftp'" in reason
    assert fingerprint(parse_host_key(keys.host_public)) in reason  # what the server offered
    assert fingerprint(parse_host_key(impostor)) in reason  # what the connection expects
    # The pickup neither retries it nor copies anything: one failed row with the reason, the file left in place.
    with SftpSession(endpoint(local_stack, keys)) as session:
        listing = list_ready(session, feed)
    attempts = []
    report = pick_up(wrong, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     policy=FAST, today=DAY, sleep=attempts.append)
    row = rows(local_stack.db_url, feed.name)["/hostkey/a.csv"]
    assert row["status"] == "failed" and "host key verification failed" in row["error"], row["error"]
    assert attempts == [] and report.failed_ids == [row["id"]]
    assert raw_keys(s3, local_stack.bucket, feed.name) == [] and (sftp_root / "hostkey" / "a.csv").exists()


def test_file_still_being_written_waits_for_a_later_run(local_stack, keys, sftp_root, s3, store) -> None:
    feed = contract("sftp_growing", "/growing", stable_seconds=2)
    folder = sftp_root / "growing"
    path = drop(folder, "big.csv", b"id\n", old=False)
    drop(folder, "done.csv", b"id\n9\n")
    with still_growing(path):
        listing, report = run_pickup(local_stack, keys, s3, store, feed)
    assert [f.name for f in listing.growing] == ["big.csv"]
    assert [f.name for f in listing.ready] == ["done.csv"] and len(report.downloaded) == 1
    assert "/growing/big.csv" not in rows(local_stack.db_url, feed.name)
    listing, report = run_pickup(local_stack, keys, s3, store, feed)
    assert [f.name for f in listing.ready] == ["big.csv"] and len(report.downloaded) == 1
    assert s3.get_object(Bucket=local_stack.bucket, Key="raw/sftp_growing/2026/11/22/big.csv")["Body"].read() \
        == (folder / "archive" / "big.csv").read_bytes()


def test_growth_after_listing_discards_the_copy(local_stack, keys, sftp_root, s3, store) -> None:
    feed = contract("sftp_regrow", "/regrow")
    path = drop(sftp_root / "regrow", "late.csv", b"id\n1\n")
    ep = endpoint(local_stack, keys)
    with SftpSession(ep) as session:
        listing = list_ready(session, feed)
    with path.open("ab") as out:
        out.write(b"2\n" * 10)
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     policy=FAST, today=DAY, sleep=lambda _s: None)
    assert report.still_growing == ["/regrow/late.csv"] and report.downloaded == [] and report.failed == {}
    assert raw_keys(s3, local_stack.bucket, feed.name) == [] and rows(local_stack.db_url, feed.name) == {}


def test_same_content_twice_is_a_duplicate_and_names_are_sanitised(local_stack, keys, sftp_root, s3, store) -> None:
    feed = contract("sftp_dup", "/dup")
    folder = sftp_root / "dup"
    drop(folder, "first.csv", b"id\n42\n")
    drop(folder, "über weird;name.csv", b"id\n42\n")
    drop(folder, "..\\..\\evil.csv", b"id\n43\n")
    _, report = run_pickup(local_stack, keys, s3, store, feed)
    found = rows(local_stack.db_url, feed.name)
    first, second = found["/dup/first.csv"], found["/dup/über weird;name.csv"]
    assert (first["status"], second["status"]) == ("downloaded", "duplicate")
    assert second["duplicate_of"] == first["id"] and report.duplicates == [second["id"]]
    assert raw_keys(s3, local_stack.bucket, feed.name) == [
        "raw/sftp_dup/2026/11/22/ber_weird_name.csv", "raw/sftp_dup/2026/11/22/evil.csv",
        "raw/sftp_dup/2026/11/22/first.csv"]


@pytest.mark.parametrize("after", ["archive", "delete", "keep"])
def test_after_download(local_stack, keys, sftp_root, s3, store, after: str) -> None:
    feed = contract(f"sftp_after_{after}", f"/after_{after}", after_download=after)
    folder = sftp_root / f"after_{after}"
    drop(folder, "k.csv", b"id\n5\n")
    _, first = run_pickup(local_stack, keys, s3, store, feed)
    assert len(first.downloaded) == 1 and not first.housekeeping_errors
    left = {"archive": ["archive"], "delete": [], "keep": ["k.csv"]}[after]
    assert sorted(p.name for p in folder.iterdir()) == left
    # The same name delivered again, new content.
    drop(folder, "k.csv", b"id\n5\n6\n")
    _, second = run_pickup(local_stack, keys, s3, store, feed)
    assert len(second.downloaded) == 1 and not second.housekeeping_errors
    if after == "archive":  # never overwritten on the server either: the newcomer gets a stamped name
        archived = sorted(p.name for p in (folder / "archive").iterdir())
        assert archived[0] == "k.csv" and archived[1].startswith("k.csv.") and len(archived) == 2
    if after == "keep":
        _, third = run_pickup(local_stack, keys, s3, store, feed)
        assert third.already_copied == [f"/after_{after}/k.csv"] and not third.downloaded
    assert len(rows_all(local_stack.db_url, feed.name)) == 2


# -- a server that drops the connection on purpose ---------------------------------------------------------


class Plan:
    """How the dropping server treats reads: cut the session once `after` bytes were asked for, `times` times."""

    def __init__(self) -> None:
        self.times = 0
        self.after = 0
        self.kill_connection = False
        self.drops = 0


PLAN = Plan()


class DroppingSftpServer(asyncssh.SFTPServer):
    def __init__(self, chan: Any, chroot: Any = None) -> None:
        super().__init__(chan, chroot=chroot)
        self.dropped = False

    def read(self, file_obj: Any, offset: int, size: int) -> Any:
        if not self.dropped and PLAN.times > 0 and offset + size > PLAN.after:
            self.dropped = True
            PLAN.times -= 1
            PLAN.drops += 1
            if PLAN.kill_connection:
                self.connection.abort()  # the whole SSH connection dies, like a server process going away
            else:
                self.channel.abort()  # only the SFTP channel is killed
        if self.dropped:
            raise asyncssh.SFTPFailure("session dropped")
        return super().read(file_obj, offset, size)


@pytest.fixture
def dropping_server(local_stack, sftp_root) -> Iterator[int]:
    PLAN.times, PLAN.after, PLAN.kill_connection, PLAN.drops = 0, 0, False, 0
    config = local_stack.stack.ctx.config
    loop = asyncio.new_event_loop()
    acceptor = loop.run_until_complete(serve(
        port=0, root=sftp_root, user=config.sftp_user, password=config.sftp_password,
        keys_dir=local_stack.stack.ctx.paths.ssh, sftp_server=DroppingSftpServer, host="127.0.0.1"))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield acceptor.sockets[0].getsockname()[1]
    finally:
        acceptor.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


@pytest.mark.parametrize("kill_connection", [False, True], ids=["channel-killed", "connection-killed"])
def test_connection_dropped_mid_transfer_is_retried(local_stack, keys, sftp_root, s3, store, dropping_server,
                                                    kill_connection: bool) -> None:
    feed = contract(f"sftp_drop_{int(kill_connection)}", f"/drop{int(kill_connection)}")
    body = os.urandom(20 << 20)  # 20 MiB: the multipart path, dropped after 12 MiB (one part already uploaded)
    drop(sftp_root / f"drop{int(kill_connection)}", "big.csv", body)
    PLAN.times, PLAN.after, PLAN.kill_connection = 2, 12 << 20, kill_connection
    _, report = run_pickup(local_stack, keys, s3, store, feed, port=dropping_server)
    assert PLAN.drops == 2 and len(report.downloaded) == 1 and not report.failed
    key = f"raw/{feed.name}/2026/11/22/big.csv"
    assert s3.get_object(Bucket=local_stack.bucket, Key=key)["Body"].read() == body
    assert no_multipart_uploads(s3, local_stack.bucket)
    row = rows(local_stack.db_url, feed.name)[f"/drop{int(kill_connection)}/big.csv"]
    assert row["status"] == "downloaded" and row["size_bytes"] == len(body)
    assert history(local_stack.db_url, row["id"]) == ["pending", "downloaded"]


def test_drops_outlasting_retries_fail_with_reason_then_recover(local_stack, keys, sftp_root, s3, store,
                                                               dropping_server) -> None:
    feed = contract("sftp_dropfail", "/dropfail")
    drop(sftp_root / "dropfail", "x.csv", b"id\n" + b"7\n" * 500_000)
    PLAN.times, PLAN.after = 100, 1000
    _, report = run_pickup(local_stack, keys, s3, store, feed, port=dropping_server, last_try=False)
    assert list(report.retry) == ["/dropfail/x.csv"] and not report.failed  # Airflow will retry the task
    assert rows(local_stack.db_url, feed.name) == {} and raw_keys(s3, local_stack.bucket, feed.name) == []
    _, report = run_pickup(local_stack, keys, s3, store, feed, port=dropping_server, last_try=True)
    row = rows(local_stack.db_url, feed.name)["/dropfail/x.csv"]
    assert row["status"] == "failed" and row["sha256"] is None
    assert "after 3 attempt(s)" in row["error"] and "sftp://" in row["error"], row["error"]
    assert raw_keys(s3, local_stack.bucket, feed.name) == [] and no_multipart_uploads(s3, local_stack.bucket)
    PLAN.times = 0
    run_pickup(local_stack, keys, s3, store, feed, port=dropping_server)
    again = rows(local_stack.db_url, feed.name)["/dropfail/x.csv"]
    assert again["id"] == row["id"] and again["status"] == "queued" and len(again["sha256"]) == 64
    assert history(local_stack.db_url, row["id"]) == ["pending", "failed", "queued"]


# -- memory: a big file streams through a bounded buffer ---------------------------------------------------


def peak_memory(local_stack, keys, sftp_root, size_mb: int) -> dict[str, Any]:
    folder = sftp_root / "memory"
    name = f"stream-{size_mb}mb.bin"
    block = os.urandom(16 << 20)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("wb") as out:
        for _ in range(0, size_mb << 20, len(block)):
            out.write(block)
    config = local_stack.stack.ctx.config
    args = {"protocol": "sftp", "port": local_stack.stack.ports.sftp, "user": config.sftp_user,
            "password": config.sftp_password, "host_key": keys.host_public, "moto": local_stack.moto_url,
            "bucket": local_stack.bucket, "db": local_stack.db_url, "directory": "/memory", "name": name,
            "naive": False, "feed": f"sftp_memory_{size_mb}"}
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "pickup_memory_probe.py"), json.dumps(args)],
                             env={**os.environ, **local_stack.env}, capture_output=True, text=True, timeout=1800)
    finally:
        (folder / name).unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("size_mb", [SMALL_BIG_MB, *([BIG_MB] if BIG_MB else [])])
def test_big_file_streams_with_bounded_memory(local_stack, keys, sftp_root, size_mb: int) -> None:
    """FILEGATE_SFTP_BIG_MB=2048 adds the full-size file (bench/bench_ingest.py (c) measures it too)."""
    measured = peak_memory(local_stack, keys, sftp_root, size_mb)
    growth_mb = (measured["peak_kb"] - measured["before_kb"]) / 1024
    print(f"SFTP → S3, {size_mb} MB: peak RSS {measured['peak_kb'] / 1024:.0f} MB, growth {growth_mb:.0f} MB, "
          f"{measured['seconds']:.1f} s")
    assert growth_mb < PEAK_GROWTH_BOUND_MB, measured
