"""Pickup from a partner's server (FTP/FTPS or SFTP, see filegate.ingestion.remote): list the feed's directory,
copy each fully written file to raw/ exactly once, register it, then archive or delete it on the server.

Guarantees, file by file:
- never a half-written file: a file is copied only if its size (and time, where the server gives one) did not
  change over `stable_seconds`, and the copy is discarded if more bytes arrive than the listing showed;
- never a partial raw object: see filegate.ingestion.transfer (atomic PUT, or multipart completed after the
  size check); the S3 object carries the source identity in its metadata so a crashed attempt is recognised;
- never a second load: a file already copied (same path, size and time, recorded in the status row) is not
  copied again, and the status store turns the same content under another name into `duplicate`;
- never silently lost: errors are retried with backoff; what still fails gets a `failed` row with the reason,
  and a later run that succeeds takes that same row on to `queued`.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from filegate.contracts.model import Contract
from filegate.ingestion.remote import RemoteEndpoint, RemoteFile, RemoteSession, usable_remote_name
from filegate.ingestion.retry import FileStillGrowing, FileVanished, RetryPolicy, describe, retryable
from filegate.ingestion.transfer import S3StreamWriter, StoredObject
from filegate.schedule.watch import note_arrivals
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, Registration, StatusStore
from filegate.storage import keys
from filegate.storage import metadata as s3_metadata
from filegate.storage.s3 import head_or_none, sha256_of_object

log = logging.getLogger(__name__)
MAX_KEY_SUFFIX = 1000


@dataclass(frozen=True)
class Listing:
    ready: list[RemoteFile]
    growing: list[RemoteFile]
    unusable: list[str] = field(default_factory=list)


@dataclass
class PickupReport:
    """What one batch did; the orchestration logs it and returns it as the task's XCom."""

    downloaded: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    already_copied: list[str] = field(default_factory=list)
    still_growing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    failed_ids: list[int] = field(default_factory=list)
    retry: dict[str, str] = field(default_factory=dict)
    housekeeping_errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"downloaded": self.downloaded, "duplicates": self.duplicates, "already_copied": self.already_copied,
                "still_growing": self.still_growing, "failed": self.failed, "failed_ids": self.failed_ids,
                "retry": self.retry,
                "housekeeping_errors": self.housekeeping_errors}


def remote_file_to_dict(remote: RemoteFile) -> dict[str, Any]:
    """A listing entry as plain JSON (XCom between the listing task and the copy tasks)."""
    return {"name": remote.name, "path": remote.path, "size": remote.size,
            "modified": remote.modified.isoformat() if remote.modified else None}


def remote_file_from_dict(data: dict[str, Any]) -> RemoteFile:
    modified = datetime.fromisoformat(data["modified"]) if data.get("modified") else None
    return RemoteFile(data["name"], data["path"], int(data["size"]), modified)


def list_ready(session: RemoteSession, contract: Contract, *, sleep: Callable[[float], None] = time.sleep) -> Listing:
    """Matching files whose size (and time) held still for `stable_seconds`; the others are still being written
    and wait for a later run. With stable_seconds 0 the listing is trusted as is (for partners who upload under
    a temporary name and rename when done)."""
    remote = _remote_settings(contract)
    first = session.list_files(remote.directory, contract.source.pattern)
    if remote.stable_seconds <= 0 or not first:
        return Listing(ready=first, growing=[])
    sleep(remote.stable_seconds)
    second = {f.name: f for f in session.list_files(remote.directory, contract.source.pattern)}
    ready, growing = [], []
    for before in first:
        after = second.get(before.name)
        if after is None:  # gone already: nothing to pick up, nothing to report as failed
            continue
        (ready if (after.size, after.modified) == (before.size, before.modified) else growing).append(after)
    if growing:
        log.info("still being written, left for a later run: %s", ", ".join(f.name for f in growing))
    return Listing(ready=ready, growing=growing)


def batches(files: Iterable[RemoteFile], size: int) -> list[list[dict[str, Any]]]:
    items = [remote_file_to_dict(f) for f in files]
    return [items[i : i + size] for i in range(0, len(items), size)]


def _remote_settings(contract: Contract) -> Any:
    settings = contract.source.remote
    if settings is None:
        raise ValueError(f"feed {contract.name} is not picked up from a server (source.kind {contract.source.kind})")
    return settings


def raw_key_for(contract: Contract, day: date, remote_name: str) -> str:
    """raw/<feed>/<day>/<safe name>. Sanitising can strip a name down to something the feed's pattern no longer
    matches ("....csv" → "csv"), and process_<feed> would then never see the file: fall back to "unnamed" plus
    the remote name's extension."""
    key = keys.raw_key(contract.name, day, remote_name)
    if fnmatch.fnmatchcase(posixpath.basename(key), contract.source.pattern):
        return key
    _, dot, ext = remote_name.rpartition(".")
    fallback = keys.raw_key(contract.name, day, f"unnamed{dot}{ext}" if dot else "unnamed")
    if not fnmatch.fnmatchcase(posixpath.basename(fallback), contract.source.pattern):
        raise ValueError(f"remote name {remote_name!r} cannot be made key-safe while matching the feed's pattern "
                         f"{contract.source.pattern!r}")
    return fallback


def _with_suffix(key: str, n: int) -> str:
    folder, _, name = key.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{folder}/{name}+{n}"
    return f"{folder}/{stem}+{n}.{ext}"


@dataclass
class _Batch:
    """One task instance's work: a shared server session (reconnected after any error) and shared clients."""

    endpoint: RemoteEndpoint
    contract: Contract
    s3: Any
    bucket: str
    store: StatusStore
    actor: Actor
    policy: RetryPolicy
    day: date
    sleep: Callable[[float], None]
    open_session: RemoteSession | None = None
    archive_ready: bool = False

    def session(self) -> RemoteSession:
        if self.open_session is None:
            session = self.endpoint.session()
            session.connect()
            self.open_session = session
        return self.open_session

    def drop_session(self) -> None:
        if self.open_session is not None:
            self.open_session.close()
            self.open_session = None
            self.archive_ready = False

    def with_retries(self, what: str, action: Callable[[], Any]) -> Any:
        """Runs `action`, reconnecting and backing off on retryable errors; re-raises the last one."""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return action()
            except Exception as exc:
                self.drop_session()  # a failed command can leave the control connection mid-transfer
                if not retryable(exc) or attempt == self.policy.attempts:
                    raise
                delay = self.policy.delay(attempt)
                log.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s", what, attempt,
                            self.policy.attempts, describe(exc), delay)
                self.sleep(delay)
        raise AssertionError("unreachable")


def pick_up(endpoint: RemoteEndpoint, contract: Contract, files: Iterable[RemoteFile], *, s3: Any, bucket: str,
            store: StatusStore, actor: Actor, last_try: bool = True, policy: RetryPolicy | None = None,
            today: date | None = None, sleep: Callable[[float], None] = time.sleep) -> PickupReport:
    """Copies each listed file to raw/<feed>/<today>/, registers it and archives/deletes it on the server.

    One file's failure never stops the batch. Files that failed with a retryable error are left in
    `report.retry` unless this is the last try, where they get a `failed` row; the caller raises so that
    Airflow retries the task (files already copied are recognised and skipped)."""
    _remote_settings(contract)
    batch = _Batch(endpoint, contract, s3, bucket, store, actor, policy or RetryPolicy(),
                   today or datetime.now(UTC).date(), sleep)
    report = PickupReport()
    files = list(files)
    history = store.reads.find_by_source(contract.name, [f.path for f in files])
    try:
        for remote in files:
            _pick_up_one(batch, remote, history.get(remote.path, []), report, last_try)
    finally:
        batch.drop_session()
    log.info("pickup of %d file(s) for %s: %d downloaded, %d duplicate, %d already copied, %d still growing, "
             "%d failed, %d to retry", len(files), contract.name, len(report.downloaded), len(report.duplicates),
             len(report.already_copied), len(report.still_growing), len(report.failed), len(report.retry))
    return report


def _pick_up_one(batch: _Batch, remote: RemoteFile, rows: list[dict[str, Any]], report: PickupReport,
                 last_try: bool) -> None:
    contract = batch.contract
    if not usable_remote_name(remote.name):
        report.failed[remote.path] = f"remote name {remote.name!r} cannot be addressed safely on the server"
        return
    copied = [r for r in rows if (r.get("params") or {}).get("source_identity") == remote.identity]
    if copied:
        log.info("%s was already copied as file #%s (%s); only housekeeping left", remote.path, copied[0]["id"],
                 copied[0]["raw_key"])
        report.already_copied.append(remote.path)
        _housekeeping(batch, remote, report)
        return
    failed_pickup = next((r for r in rows if r["status"] == Status.FAILED and r["sha256"] is None), None)
    try:
        key, existing = _choose_key(batch, remote, failed_pickup)
        stored = existing or batch.with_retries(f"copy {remote.path}", lambda: _copy(batch, remote, key))
        registration = _register(batch, remote, stored, failed_pickup)
        note_arrivals(batch.store, contract, [registration.file_id])  # expected deliveries (filegate.schedule)
    except FileStillGrowing as exc:
        log.info("%s: %s; left for a later run", remote.path, exc)
        report.still_growing.append(remote.path)
        return
    except Exception as exc:
        reason = _failure_reason(batch, remote, exc)
        log.error("%s: %s", remote.path, reason)
        if isinstance(exc, FileVanished) or last_try:
            file_id = batch.store.record_pickup_failure(
                feed=contract.name, source=contract.source.kind, source_path=remote.path,
                raw_key=_label_key(batch, remote, failed_pickup), name=keys.safe_name(remote.name),
                size_bytes=remote.size, error=reason, actor=batch.actor, arrived_on=batch.day)
            report.failed[remote.path] = f"file #{file_id}: {reason}"
            report.failed_ids.append(file_id)
        else:
            report.retry[remote.path] = reason
        return
    if registration.status == Status.DUPLICATE or registration.duplicate_of:
        report.duplicates.append(registration.file_id)
    else:
        report.downloaded.append(registration.file_id)
    _housekeeping(batch, remote, report)


def _failure_reason(batch: _Batch, remote: RemoteFile, exc: BaseException) -> str:
    """Tells a vanished file apart from a transfer problem: after a 550 (or any failed attempt) we ask again."""
    if isinstance(exc, FileVanished):
        return str(exc)
    attempts = f" after {batch.policy.attempts} attempt(s)" if retryable(exc) else ""
    reason = f"could not copy {remote.path} from {batch.endpoint.describe()}{attempts}: {describe(exc)}"
    if batch.endpoint.refused(exc):
        try:
            if batch.session().size(remote.path) is None:
                return f"{remote.path} vanished from {batch.endpoint.describe()} between listing and download"
        except Exception:  # the server is unwell; the original reason stands
            batch.drop_session()
    return reason


def _choose_key(batch: _Batch, remote: RemoteFile,
                failed_pickup: dict[str, Any] | None) -> tuple[str, StoredObject | None]:
    """raw/<feed>/<day>/<safe name>, or name+2, name+3, … when another file already took that key: raw/ is
    written once. An object left by a crashed attempt at this very file is reused instead of copied again."""
    base = raw_key_for(batch.contract, batch.day, remote.name)
    if not base.startswith(f"{batch.contract.raw_prefix}{batch.day:%Y/%m/%d}/") or base.count("/") != 5:
        raise ValueError(f"refusing raw key {base!r} built from remote name {remote.name!r}")
    candidates = [base] + [_with_suffix(base, n) for n in range(2, MAX_KEY_SUFFIX)]
    for start in range(0, len(candidates), 20):
        chunk = candidates[start : start + 20]
        known = batch.store.reads.find_by_raw_keys(chunk)
        for key in chunk:
            row = known.get(key)
            if row is not None and (failed_pickup is None or row["id"] != failed_pickup["id"]):
                continue
            head = head_or_none(batch.s3, batch.bucket, key)
            if head is None:
                return key, None
            if s3_metadata.source_identity(head.get("Metadata", {})) == remote.identity:
                sha256 = head["Metadata"].get(s3_metadata.SHA256) or sha256_of_object(batch.s3, batch.bucket, key)[0]
                log.info("%s: reusing s3://%s/%s left by an earlier attempt", remote.path, batch.bucket, key)
                return key, StoredObject(batch.bucket, key, int(head["ContentLength"]), sha256, 0)
    raise RuntimeError(f"no free raw key for {remote.name!r} under {base!r}")


def _label_key(batch: _Batch, remote: RemoteFile, failed_pickup: dict[str, Any] | None) -> str:
    """The raw key a failed pickup's row records (where the copy would have gone); unique among rows, and
    replaced by the real key when a later attempt succeeds."""
    if failed_pickup is not None:
        return str(failed_pickup["raw_key"])
    base = raw_key_for(batch.contract, batch.day, remote.name)
    candidates = [base] + [_with_suffix(base, n) for n in range(2, MAX_KEY_SUFFIX)]
    known = batch.store.reads.find_by_raw_keys(candidates)
    return next(key for key in candidates if key not in known)


def _copy(batch: _Batch, remote: RemoteFile, key: str) -> StoredObject:
    session = batch.session()
    writer = S3StreamWriter(batch.s3, batch.bucket, key, expected_size=remote.size,
                            metadata=s3_metadata.source_metadata(remote.identity))
    with writer:
        try:
            session.retrieve(remote.path, writer.write)
        except FileStillGrowing:
            raise
        except Exception as exc:
            if batch.endpoint.refused(exc) and session.size(remote.path) is None:
                raise FileVanished(f"{remote.path} vanished from {batch.endpoint.describe()} between listing and "
                                   "download") from exc
            raise
        # The listing said the file was stable; a size that changed since means a writer came back.
        now_size = session.size(remote.path)
        if now_size is not None and now_size != remote.size:
            raise FileStillGrowing(f"{remote.path} changed size from {remote.size} to {now_size} during the copy")
        return writer.complete()


def _register(batch: _Batch, remote: RemoteFile, stored: StoredObject,
              failed_pickup: dict[str, Any] | None) -> Registration:
    contract = batch.contract
    if failed_pickup is not None:
        try:
            return batch.store.revive_pickup(failed_pickup["id"], raw_key=stored.key, sha256=stored.sha256,
                                             size_bytes=stored.size, actor=batch.actor,
                                             params={"source_identity": remote.identity})
        except Exception:  # e.g. a process run registered the raw key first: that row then carries the file
            log.warning("could not take failed pickup #%s on; registering %s afresh", failed_pickup["id"],
                        stored.key, exc_info=True)
    registration = batch.store.register(
        feed=contract.name, source=contract.source.kind, raw_key=stored.key, name=posixpath.basename(stored.key),
        sha256=stored.sha256, size_bytes=stored.size, actor=batch.actor, source_path=remote.path,
        arrived_on=batch.day, params={"source_identity": remote.identity},
    )
    log.info("%s → s3://%s/%s: file #%s %s", remote.path, batch.bucket, stored.key, registration.file_id,
             registration.status)
    return registration


def _housekeeping(batch: _Batch, remote: RemoteFile, report: PickupReport) -> None:
    """Archive or delete on the server. A failure here loses nothing (the copy is registered): the file is
    recognised as already copied next run, and housekeeping is tried again."""
    settings = _remote_settings(batch.contract)
    if settings.after_download == "keep":
        return

    def act() -> None:
        session = batch.session()
        if settings.after_download == "delete":
            session.delete(remote.path)
            return
        folder = posixpath.join(settings.directory, settings.archive_directory)
        if not batch.archive_ready:
            session.ensure_directory(folder)
            batch.archive_ready = True
        target = posixpath.join(folder, remote.name)
        try:
            session.rename(remote.path, target)
        except Exception as exc:
            if not batch.endpoint.refused(exc) or session.size(remote.path) is None:
                raise
            # Some servers refuse to overwrite: keep both, the later one stamped.
            session.rename(remote.path, f"{target}.{datetime.now(UTC):%Y%m%dT%H%M%S}")

    try:
        batch.with_retries(f"{settings.after_download} {remote.path}", act)
    except Exception as exc:
        if batch.endpoint.refused(exc) and _gone(batch, remote):
            return  # already archived/deleted by an earlier try of this task
        reason = f"{settings.after_download} failed: {describe(exc)}"
        log.warning("%s: %s (the copy is safe; retried next run)", remote.path, reason)
        report.housekeeping_errors[remote.path] = reason


def _gone(batch: _Batch, remote: RemoteFile) -> bool:
    try:
        return batch.session().size(remote.path) is None
    except Exception:
        batch.drop_session()
        return False
