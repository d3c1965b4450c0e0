"""FTP/FTPS pickup against real servers on loopback: the local stack's pyftpdlib server (FTP and explicit FTPS
with its self-signed certificate), plus pyftpdlib servers started here that misbehave on purpose (dropping the
connection mid-transfer, lacking MLSD), moto S3 and the Postgres status store."""

from __future__ import annotations

import ftplib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pickup_checks import DAY, FAST, actor, drop, history, no_multipart_uploads, raw_keys, rows, rows_all, still_growing
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from filegate.contracts.model import Contract
from filegate.ingestion.ftp import FtpEndpoint, FtpSession, usable_remote_name
from filegate.ingestion.pickup import list_ready, pick_up
from filegate.ingestion.retry import RetryPolicy
from filegate.status.store import StatusStore

pytestmark = pytest.mark.integration
ACTOR = actor("ingest_ftp_test")


def contract(feed: str, directory: str, **ftp: Any) -> Contract:
    return Contract.model_validate({
        "name": feed, "description": "FTP pickup test feed",
        "source": {"kind": "ftp", "pattern": "*.csv",
                   "ftp": {"directory": directory, "stable_seconds": 0, **ftp}},
    })


@pytest.fixture(scope="module")
def s3(local_stack) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


def endpoint(local_stack, *, tls: bool = False, port: int | None = None) -> FtpEndpoint:
    return FtpEndpoint(host="127.0.0.1", port=port or local_stack.ftp_port, user=local_stack.ftp_user,
                       password=local_stack.ftp_password, tls=tls, ca_file=str(local_stack.ftp_cert), timeout_s=10)


def run_pickup(local_stack, s3, store, feed: Contract, *, tls: bool = False, port: int | None = None,
               last_try: bool = True, policy: RetryPolicy = FAST):
    ep = endpoint(local_stack, tls=tls, port=port)
    with FtpSession(ep) as session:
        listing = list_ready(session, feed, sleep=time.sleep)
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     last_try=last_try, policy=policy, today=DAY, sleep=lambda _s: None)
    return listing, report


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_normal_pickup_archives_and_registers(local_stack, s3, store, tls: bool) -> None:
    feed = contract(f"pick_{'tls' if tls else 'plain'}", f"/in_{tls}", tls=tls)
    folder = local_stack.ftp_root / f"in_{tls}"
    drop(folder, "a.csv", b"id\n1\n")
    drop(folder, "b.csv", b"id\n2\n" * 1000)
    drop(folder, "ignored.txt", b"not matching the glob")
    _, report = run_pickup(local_stack, s3, store, feed, tls=tls)
    assert len(report.downloaded) == 2 and not report.failed and not report.retry
    assert raw_keys(s3, local_stack.bucket, feed.name) == [f"raw/{feed.name}/2026/11/22/a.csv",
                                                          f"raw/{feed.name}/2026/11/22/b.csv"]
    body = s3.get_object(Bucket=local_stack.bucket, Key=f"raw/{feed.name}/2026/11/22/b.csv")["Body"].read()
    assert body == b"id\n2\n" * 1000
    found = rows(local_stack.db_url, feed.name)
    row = found[f"/in_{tls}/a.csv"]
    assert row["status"] == "downloaded" and row["source"] == "ftp" and row["size_bytes"] == 5
    assert row["sha256"] == hashlib.sha256(b"id\n1\n").hexdigest()
    assert history(local_stack.db_url, row["id"]) == ["pending", "downloaded"]
    # Archived on the server; the non-matching file is untouched.
    assert sorted(p.name for p in folder.iterdir()) == ["archive", "ignored.txt"]
    assert sorted(p.name for p in (folder / "archive").iterdir()) == ["a.csv", "b.csv"]
    # A second run finds nothing new.
    listing, again = run_pickup(local_stack, s3, store, feed, tls=tls)
    assert listing.ready == [] and again.downloaded == []


def test_ftps_needs_a_trusted_certificate(local_stack) -> None:
    import ssl

    untrusted = FtpEndpoint(host="127.0.0.1", port=local_stack.ftp_port, user=local_stack.ftp_user,
                            password=local_stack.ftp_password, tls=True, ca_file=None, timeout_s=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        FtpSession(untrusted).connect()


def test_file_still_being_written_waits_for_a_later_run(local_stack, s3, store) -> None:
    feed = contract("pick_growing", "/growing", stable_seconds=2)
    folder = local_stack.ftp_root / "growing"
    path = drop(folder, "big.csv", b"id\n", old=False)
    drop(folder, "done.csv", b"id\n9\n")
    with still_growing(path):
        listing, report = run_pickup(local_stack, s3, store, feed)
    assert [f.name for f in listing.growing] == ["big.csv"]
    assert [f.name for f in listing.ready] == ["done.csv"] and len(report.downloaded) == 1
    assert raw_keys(s3, local_stack.bucket, feed.name) == ["raw/pick_growing/2026/11/22/done.csv"]
    assert "/growing/big.csv" not in rows(local_stack.db_url, feed.name)
    # Writer finished: the next run copies the whole file.
    listing, report = run_pickup(local_stack, s3, store, feed)
    assert [f.name for f in listing.ready] == ["big.csv"] and len(report.downloaded) == 1
    assert s3.get_object(Bucket=local_stack.bucket, Key="raw/pick_growing/2026/11/22/big.csv")["Body"].read() \
        == path.with_name("archive").joinpath("big.csv").read_bytes()


def test_growth_after_listing_discards_the_copy(local_stack, s3, store) -> None:
    """Listed as stable, then appended to before the copy: the copy stops, nothing is stored or registered."""
    feed = contract("pick_regrow", "/regrow")
    folder = local_stack.ftp_root / "regrow"
    path = drop(folder, "late.csv", b"id\n1\n")
    ep = endpoint(local_stack)
    with FtpSession(ep) as session:
        listing = list_ready(session, feed)
    with path.open("ab") as out:
        out.write(b"2\n" * 10)
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     policy=FAST, today=DAY, sleep=lambda _s: None)
    assert report.still_growing == ["/regrow/late.csv"] and report.downloaded == [] and report.failed == {}
    assert raw_keys(s3, local_stack.bucket, feed.name) == []
    assert rows(local_stack.db_url, feed.name) == {}
    assert path.exists()  # left for the next run


def test_same_content_twice_is_a_duplicate(local_stack, s3, store) -> None:
    feed = contract("pick_dup", "/dup")
    folder = local_stack.ftp_root / "dup"
    drop(folder, "first.csv", b"id\n42\n")
    drop(folder, "second.csv", b"id\n42\n")
    _, report = run_pickup(local_stack, s3, store, feed)
    found = rows(local_stack.db_url, feed.name)
    first, second = found["/dup/first.csv"], found["/dup/second.csv"]
    assert (first["status"], second["status"]) == ("downloaded", "duplicate")
    assert second["duplicate_of"] == first["id"] and "same content" in second["error"]
    assert report.downloaded == [first["id"]] and report.duplicates == [second["id"]]
    # The same name again on the same day (new content) never overwrites raw/: it gets a suffixed key.
    drop(folder, "first.csv", b"id\n43\n", old=False)  # same size, but a new time: a new arrival
    _, report = run_pickup(local_stack, s3, store, feed)
    assert raw_keys(s3, local_stack.bucket, feed.name) == [
        "raw/pick_dup/2026/11/22/first+2.csv", "raw/pick_dup/2026/11/22/first.csv",
        "raw/pick_dup/2026/11/22/second.csv"]
    assert s3.get_object(Bucket=local_stack.bucket, Key="raw/pick_dup/2026/11/22/first.csv")["Body"].read() \
        == b"id\n42\n"


def test_hostile_names_stay_inside_the_raw_prefix(local_stack, s3, store) -> None:
    feed = contract("pick_names", "/names")
    folder = local_stack.ftp_root / "names"
    names = ["..\\..\\..\\evil.csv", "ctl\x01\x1bname.csv", "über weird;name.csv", "x" * 240 + ".csv",
             "....csv"]
    for n, name in enumerate(names):
        drop(folder, name, f"id\n{n}\n".encode())
    _, report = run_pickup(local_stack, s3, store, feed)
    assert len(report.downloaded) == len(names) and not report.failed
    stored = raw_keys(s3, local_stack.bucket, feed.name)
    assert all(k.startswith("raw/pick_names/2026/11/22/") and k.count("/") == 5 for k in stored)
    leaves = sorted(k.rsplit("/", 1)[1] for k in stored)
    assert {"evil.csv", "ctlname.csv", "ber_weird_name.csv", "unnamed.csv"} <= set(leaves)
    assert max(len(leaf) for leaf in leaves) <= 200
    assert all(leaf.endswith(".csv") for leaf in leaves)  # still the feed's pattern: process_<feed> sees them
    found = rows(local_stack.db_url, feed.name)
    assert set(found) == {f"/names/{name}" for name in names}  # the real remote path is kept for operators


def test_remote_names_that_could_escape_the_directory_are_refused() -> None:
    assert not usable_remote_name("../../etc/passwd.csv")
    assert not usable_remote_name("a/b.csv") and not usable_remote_name("..") and not usable_remote_name("x\r\n.csv")
    assert usable_remote_name("..\\evil.csv") and usable_remote_name("plain.csv")


# -- servers that misbehave on purpose --------------------------------------------------------------------


class Plan:
    """How the flaky server treats RETR: drop the connection after `after` bytes, `times` times."""

    def __init__(self) -> None:
        self.times = 0
        self.after = 0
        self.kill_control = False
        self.retrs = 0


PLAN = Plan()


class DroppingFile:
    def __init__(self, inner: Any, handler: Any) -> None:
        self.inner, self.handler, self.sent = inner, handler, 0
        self.name = inner.name
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.sent >= PLAN.after:
            PLAN.times -= 1
            if PLAN.kill_control:
                self.handler.close()  # the whole session dies, like a server process going away
                return b""
            raise ConnectionResetError("simulated network drop")
        data = self.inner.read(min(size, PLAN.after - self.sent) if size and size > 0 else PLAN.after - self.sent)
        self.sent += len(data)
        return data

    def close(self) -> None:
        self.closed = True
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FlakyFS(AbstractedFS):
    def open(self, filename: str, mode: str) -> Any:
        handle = super().open(filename, mode)
        if "r" in mode and PLAN.times > 0:
            PLAN.retrs += 1
            return DroppingFile(handle, self.cmd_channel)
        return handle


def serve(root: Path, user: str, password: str, handler_base: type[FTPHandler] = FTPHandler,
          **attrs: Any) -> Iterator[int]:
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")
    handler = type("TestHandler", (handler_base,), {"authorizer": authorizer, "use_sendfile": False, **attrs})
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1, "handle_exit": False},
                              daemon=True)
    thread.start()
    try:
        yield server.address[1]
    finally:
        server.close_all()
        thread.join(timeout=5)


@pytest.fixture
def flaky_server(local_stack) -> Iterator[int]:
    PLAN.times, PLAN.after, PLAN.kill_control, PLAN.retrs = 0, 0, False, 0
    yield from serve(local_stack.ftp_root, local_stack.ftp_user, local_stack.ftp_password, abstracted_fs=FlakyFS)


@pytest.mark.parametrize("kill_control", [False, True], ids=["data-reset", "session-killed"])
def test_connection_dropped_mid_transfer_is_retried(local_stack, s3, store, flaky_server, kill_control) -> None:
    feed = contract(f"pick_drop_{int(kill_control)}", f"/drop{int(kill_control)}")
    body = os.urandom(20 << 20)  # 20 MiB: the multipart path, dropped after 12 MiB (one part already uploaded)
    drop(local_stack.ftp_root / f"drop{int(kill_control)}", "big.csv", body)
    PLAN.times, PLAN.after, PLAN.kill_control = 2, 12 << 20, kill_control
    _, report = run_pickup(local_stack, s3, store, feed, port=flaky_server)
    assert PLAN.retrs == 2 and len(report.downloaded) == 1 and not report.failed
    key = f"raw/{feed.name}/2026/11/22/big.csv"
    assert s3.get_object(Bucket=local_stack.bucket, Key=key)["Body"].read() == body
    assert no_multipart_uploads(s3, local_stack.bucket)
    row = rows(local_stack.db_url, feed.name)[f"/drop{int(kill_control)}/big.csv"]
    assert row["status"] == "downloaded" and row["size_bytes"] == len(body)


def test_drops_outlasting_retries_fail_with_reason_then_recover(local_stack, s3, store, flaky_server) -> None:
    feed = contract("pick_dropfail", "/dropfail")
    drop(local_stack.ftp_root / "dropfail", "x.csv", b"id\n" + b"7\n" * 50_000)
    PLAN.times, PLAN.after = 100, 1000
    _, report = run_pickup(local_stack, s3, store, feed, port=flaky_server, last_try=False)
    assert list(report.retry) == ["/dropfail/x.csv"] and not report.failed  # Airflow will retry the task
    assert rows(local_stack.db_url, feed.name) == {} and raw_keys(s3, local_stack.bucket, feed.name) == []
    _, report = run_pickup(local_stack, s3, store, feed, port=flaky_server, last_try=True)
    row = rows(local_stack.db_url, feed.name)["/dropfail/x.csv"]
    assert row["status"] == "failed" and row["sha256"] is None
    assert "after 3 attempt(s)" in row["error"] and "426" in row["error"], row["error"]
    assert raw_keys(s3, local_stack.bucket, feed.name) == [] and no_multipart_uploads(s3, local_stack.bucket)
    assert (local_stack.ftp_root / "dropfail" / "x.csv").exists()  # nothing lost
    # The server recovers: the next run copies the file and the same row moves on.
    PLAN.times = 0
    _, report = run_pickup(local_stack, s3, store, feed, port=flaky_server)
    again = rows(local_stack.db_url, feed.name)["/dropfail/x.csv"]
    assert again["id"] == row["id"] and again["status"] == "queued" and len(again["sha256"]) == 64
    assert history(local_stack.db_url, row["id"]) == ["pending", "failed", "queued"]
    assert raw_keys(s3, local_stack.bucket, feed.name) == ["raw/pick_dropfail/2026/11/22/x.csv"]


def test_file_vanishing_between_listing_and_download(local_stack, s3, store) -> None:
    feed = contract("pick_vanish", "/vanish")
    path = drop(local_stack.ftp_root / "vanish", "gone.csv", b"id\n1\n")
    ep = endpoint(local_stack)
    with FtpSession(ep) as session:
        listing = list_ready(session, feed)
    path.unlink()
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store, actor=ACTOR,
                     policy=FAST, today=DAY, last_try=False, sleep=lambda _s: None)
    row = rows(local_stack.db_url, feed.name)["/vanish/gone.csv"]
    assert row["status"] == "failed" and "vanished" in row["error"] and row["attempts"] == 1
    assert list(report.failed) == ["/vanish/gone.csv"] and not report.retry  # terminal at once, not retried


def test_server_down_fails_each_file_with_reason(local_stack, s3, store) -> None:
    feed = contract("pick_down", "/down")
    drop(local_stack.ftp_root / "down", "a.csv", b"id\n1\n")
    with FtpSession(endpoint(local_stack)) as session:
        listing = list_ready(session, feed)
    closed_port = FtpEndpoint(host="127.0.0.1", port=1, user="x", password="y", timeout_s=2)
    with pytest.raises(ConnectionRefusedError):
        FtpSession(closed_port).connect()
    report = pick_up(closed_port, feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store,
                     actor=ACTOR, policy=FAST, today=DAY, sleep=lambda _s: None)
    row = rows(local_stack.db_url, feed.name)["/down/a.csv"]
    assert row["status"] == "failed" and "ConnectionRefusedError" in row["error"]
    assert report.failed_ids == [row["id"]]


def test_s3_errors_are_retried_then_reported(local_stack, s3, store) -> None:
    feed = contract("pick_s3err", "/s3err")
    drop(local_stack.ftp_root / "s3err", "a.csv", b"id\n1\n")
    ep = endpoint(local_stack)
    with FtpSession(ep) as session:
        listing = list_ready(session, feed)
    report = pick_up(ep, feed, listing.ready, s3=s3, bucket="no-such-bucket", store=store, actor=ACTOR,
                     policy=FAST, today=DAY, sleep=lambda _s: None)
    row = rows(local_stack.db_url, feed.name)["/s3err/a.csv"]
    assert row["status"] == "failed" and "NoSuchBucket" in row["error"] and "after 3 attempt(s)" in row["error"]
    assert report.failed and (local_stack.ftp_root / "s3err" / "a.csv").exists()


class NoMlsdHandler(FTPHandler):
    proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k not in {"MLSD", "MLST"}}


def test_listing_falls_back_to_nlst_size_mdtm(local_stack, s3, store) -> None:
    feed = contract("pick_nlst", "/nlst", after_download="delete")
    folder = local_stack.ftp_root / "nlst"
    drop(folder, "a.csv", b"id\n1\n")
    (folder / "sub.csv").mkdir()  # a directory matching the glob is not a file to pick up
    for port in serve(local_stack.ftp_root, local_stack.ftp_user, local_stack.ftp_password, NoMlsdHandler):
        with FtpSession(endpoint(local_stack, port=port)) as session:
            assert "MLST" not in session.features
            files = session.list_files("/nlst", "*.csv")
            assert [(f.name, f.size) for f in files] == [("a.csv", 5)] and files[0].modified is not None
            with pytest.raises(ftplib.error_perm):
                list(session.ftp.mlsd("/nlst"))
        _, report = run_pickup(local_stack, s3, store, feed, port=port)
    assert len(report.downloaded) == 1 and not (folder / "a.csv").exists()  # deleted after the copy


def test_keep_mode_never_copies_twice_and_reuses_a_crashed_copy(local_stack, s3, store) -> None:
    feed = contract("pick_keep", "/keep", after_download="keep")
    folder = local_stack.ftp_root / "keep"
    drop(folder, "k.csv", b"id\n5\n")
    _, first = run_pickup(local_stack, s3, store, feed)
    _, second = run_pickup(local_stack, s3, store, feed)
    assert len(first.downloaded) == 1 and second.already_copied == ["/keep/k.csv"] and not second.downloaded
    # A new version of the file (new size and time) is a new arrival.
    drop(folder, "k.csv", b"id\n5\n6\n")
    _, third = run_pickup(local_stack, s3, store, feed)
    assert len(third.downloaded) == 1
    assert len(rows_all(local_stack.db_url, feed.name)) == 2


def test_object_left_by_a_crashed_attempt_is_reused(local_stack, s3, store) -> None:
    """Copied to S3, then the worker died before registering: the next attempt registers that object."""
    from filegate.storage.metadata import source_metadata

    feed = contract("pick_crash", "/crash")
    drop(local_stack.ftp_root / "crash", "c.csv", b"id\n8\n")
    with FtpSession(endpoint(local_stack)) as session:
        listing = list_ready(session, feed)
    remote = listing.ready[0]
    key = "raw/pick_crash/2026/11/22/c.csv"
    s3.put_object(Bucket=local_stack.bucket, Key=key, Body=b"id\n8\n",
                  Metadata=source_metadata(remote.identity))
    report = pick_up(endpoint(local_stack), feed, listing.ready, s3=s3, bucket=local_stack.bucket, store=store,
                     actor=ACTOR, policy=FAST, today=DAY, sleep=lambda _s: None)
    assert len(report.downloaded) == 1
    assert raw_keys(s3, local_stack.bucket, feed.name) == [key]
    versions = s3.list_object_versions(Bucket=local_stack.bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1  # not written a second time
