"""Arrivals: raw objects in S3 (named by S3 event notifications, or found by a sweep of the feed's prefix)
registered in the status store, duplicates recognised by content, new files queued for processing.

Every source ends here: the FTP pickup and the upload endpoint write raw/ objects, S3 events name them, and the
sweep finds any an event missed. The object's metadata (filegate.storage.metadata) says where it came from.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import posixpath
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote_plus

from filegate.contracts.model import Contract
from filegate.schedule.watch import note_arrivals
from filegate.settings import file_workers
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys
from filegate.storage import metadata as s3_metadata
from filegate.storage.s3 import HashedObject, hash_object, list_keys, sha256_from_head

log = logging.getLogger(__name__)
MAX_SWEEP_DAYS = 366  # longer ranges list the whole feed prefix once instead of one listing per day


def keys_from_s3_events(messages: Iterable[dict[str, Any]]) -> list[str]:
    """Raw keys from SQS messages carrying S3 event notifications (keys arrive URL-encoded)."""
    found: list[str] = []
    for message in messages:
        try:
            body = json.loads(message.get("Body") or "{}")
        except json.JSONDecodeError:
            log.warning("ignoring an SQS message that is not JSON: %.200s", message.get("Body"))
            continue
        if isinstance(body, dict) and "Message" in body and "Records" not in body:  # SNS envelope
            try:
                body = json.loads(body["Message"])
            except (TypeError, json.JSONDecodeError):
                continue
        for record in body.get("Records", []) if isinstance(body, dict) else []:
            if str(record.get("eventName", "")).startswith("ObjectCreated"):
                found.append(unquote_plus(record["s3"]["object"]["key"]))
    return found


def register_arrivals(store: StatusStore, s3: Any, bucket: str, contract: Contract, actor: Actor, *,
                      event_keys: Iterable[str] = (), sweep: bool = True, since: date | None = None,
                      until: date | None = None) -> list[int]:
    """Registers raw objects not yet known (from events, plus a sweep of the feed's prefix) and queues them.

    The sweep reconciles S3 with the store: SQS messages are consumed before a run exists, so a run that
    failed or a paused DAG must not lose files. `since`/`until` limit the sweep to arrival dates [since, until)
    (sensed runs, backfill); with both given only those days' prefixes are listed, not the feed's whole history.
    """
    candidates = {k for k in event_keys if k.startswith(contract.raw_prefix)}
    if sweep:
        for prefix in _sweep_prefixes(contract, since, until):
            candidates.update(obj["Key"] for obj in list_keys(s3, bucket, prefix))
    wanted = []
    for key in sorted(candidates):
        arrived = keys.arrival_date_from_raw_key(key)
        if not fnmatch.fnmatch(posixpath.basename(key), contract.source.pattern):
            continue
        if (since and (arrived is None or arrived < since)) or (until and (arrived is None or arrived >= until)):
            continue
        wanted.append(key)
    known = store.reads.find_by_raw_keys(wanted)
    to_queue = [known[key]["id"] for key in wanted if key in known and known[key]["status"] == Status.DOWNLOADED]
    fresh = [key for key in wanted if key not in known]

    def read(key: str) -> tuple[HashedObject, Arrival]:
        # An object S3 holds a verified sha256 of (Filegate's own writes, producers sending a SHA-256 checksum)
        # costs a HeadObject: process_files' download is then its only read, and checks that same hash.
        found = sha256_from_head(s3, bucket, key) or hash_object(s3, bucket, key)
        return found, _arrival_details(found.metadata, where=f"s3://{bucket}/{key}")

    # Hashing the objects runs several at a time; registering stays in key order, so that of two files with the
    # same content the first by name is the original, whatever the timing.
    registered: list[int] = []
    with ThreadPoolExecutor(max_workers=file_workers(), thread_name_prefix="filegate-register") as pool:
        for key, (found, arrival) in zip(fresh, pool.map(read, fresh), strict=True):
            registration = store.register(
                feed=contract.name, source=contract.source.kind, raw_key=key, name=posixpath.basename(key),
                sha256=found.sha256, size_bytes=found.size, actor=actor,
                arrived_on=keys.arrival_date_from_raw_key(key), source_path=arrival.source_path,
                params=arrival.row_params, job_params=arrival.processing_params,
            )
            registered.append(registration.file_id)
            if registration.status == Status.DOWNLOADED:
                to_queue.append(registration.file_id)
            log.info("registered %s as file #%s (%s)", key, registration.file_id, registration.status)
    note_arrivals(store, contract, registered)  # expected deliveries: a late file turns its slot late at once
    return store.queue(to_queue, actor) if to_queue else []


def _sweep_prefixes(contract: Contract, since: date | None, until: date | None) -> list[str]:
    if since is None or until is None or not 0 < (until - since).days <= MAX_SWEEP_DAYS:
        return [contract.raw_prefix]
    return [f"{contract.raw_prefix}{since + timedelta(days=n):%Y/%m/%d}/" for n in range((until - since).days)]


@dataclass(frozen=True)
class Arrival:
    """What a raw object's metadata says of its arrival."""

    source_path: str | None  # the FTP path an ingest_ftp copy came from
    processing_params: dict[str, Any]  # given with an upload (a page map): part of the file's identity as a job
    source_identity: str | None

    @property
    def row_params(self) -> dict[str, Any]:
        """Kept on the file row and shown on its page: the processing parameters, and the FTP source identity."""
        extra = {"source_identity": self.source_identity} if self.source_identity else {}
        return {**self.processing_params, **extra}


def _arrival_details(metadata: dict[str, str], *, where: str) -> Arrival:
    try:
        params = s3_metadata.params_of(metadata, where=where)
    except ValueError as exc:  # processing a file that needs its parameters says so; registering goes on
        log.warning("%s", exc)
        params = {}
    identity = s3_metadata.source_identity(metadata)
    return Arrival(identity.split("|", 1)[0] if identity else None, params, identity)
