"""The status store on a real PostgreSQL: migrations, registration, duplicates, lifecycle, atomic claim."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from filegate.status import Actor, Status, StatusStore, TransitionError

pytestmark = pytest.mark.integration
ACTOR = Actor(dag_id="test", run_id="run-1", task_id="t", try_number=1)


@pytest.fixture
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


@pytest.fixture
def feed() -> str:
    return f"feed_{uuid.uuid4().hex[:8]}"


def register(store: StatusStore, feed: str, name: str, sha: str):
    return store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/2026/11/21/{name}", name=name,
                          sha256=sha, size_bytes=10, actor=ACTOR)


def test_migrations_are_versioned_and_idempotent(store: StatusStore, local_stack) -> None:
    assert store.migrate() == []
    with psycopg.connect(local_stack.db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migration ORDER BY version")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert versions[0] == 1
    assert {"file", "file_event", "api_call", "quality_result"} <= tables


def test_same_content_is_a_duplicate_and_same_key_is_idempotent(store: StatusStore, feed: str) -> None:
    first = register(store, feed, "a.csv", "1" * 64)
    again = register(store, feed, "a.csv", "1" * 64)
    copy = register(store, feed, "b.csv", "1" * 64)
    assert (first.status, first.created) == (Status.DOWNLOADED, True)
    assert (again.file_id, again.created) == (first.file_id, False)
    assert (copy.status, copy.duplicate_of) == (Status.DUPLICATE, first.file_id)
    row = store.reads.get_file(copy.file_id)
    assert "same content" in row["error"] and "'a.csv'" in row["error"]
    assert [e["to_status"] for e in store.reads.history(copy.file_id)] == ["pending", "duplicate"]


def test_an_upload_is_one_job_per_content_and_processing_parameters(store: StatusStore, feed: str) -> None:
    """A PDF split once may be uploaded again with another page map: that is a new job, not a duplicate."""
    def upload(name: str, page_map: dict | None):
        params = {"page_map": page_map} if page_map else None
        return store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/2026/11/21/{name}", name=name,
                              sha256="2" * 64, size_bytes=10, actor=ACTOR, params=params, job_params=params)

    first = upload("a.pdf", {"part1": [1, 2]})
    other_map = upload("a_2.pdf", {"part1": [1], "part2": [2]})
    same_map = upload("a_3.pdf", {"part1": [1, 2]})
    no_params = upload("a_4.pdf", None)
    no_params_again = upload("a_5.pdf", None)
    assert [first.status, other_map.status, no_params.status] == [Status.DOWNLOADED] * 3
    assert (same_map.status, same_map.duplicate_of) == (Status.DUPLICATE, first.file_id)
    assert (no_params_again.status, no_params_again.duplicate_of) == (Status.DUPLICATE, no_params.file_id)
    assert "same content and processing parameters" in store.reads.get_file(same_map.file_id)["error"]
    assert store.reads.get_file(no_params.file_id)["job_key"] == "2" * 64  # no parameters: the sha256 itself
    assert len({store.reads.get_file(r.file_id)["job_key"] for r in (first, other_map, no_params)}) == 3


def test_history_records_who_moved_the_file(store: StatusStore, feed: str) -> None:
    reg = register(store, feed, "a.csv", uuid.uuid4().hex * 2)
    store.queue([reg.file_id], ACTOR)
    claimed = store.claim(ACTOR, feed=feed)
    assert [r["id"] for r in claimed] == [reg.file_id]
    store.transition(reg.file_id, Status.QUARANTINED, ACTOR, error="missing column(s) x")
    history = store.reads.history(reg.file_id)
    assert [(e["from_status"], e["to_status"]) for e in history] == [
        (None, "pending"), ("pending", "downloaded"), ("downloaded", "queued"), ("queued", "processing"),
        ("processing", "quarantined")]
    assert history[-1]["message"] == "missing column(s) x"
    assert {(e["dag_id"], e["run_id"], e["try_number"]) for e in history} == {("test", "run-1", 1)}
    file = store.reads.get_file(reg.file_id)
    assert file["finished_at"] is not None and file["error"] == "missing column(s) x"


def test_forbidden_transition_is_refused_and_changes_nothing(store: StatusStore, feed: str) -> None:
    reg = register(store, feed, "a.csv", uuid.uuid4().hex * 2)
    with pytest.raises(TransitionError):
        store.transition(reg.file_id, Status.PROCESSED, ACTOR)
    assert store.reads.get_file(reg.file_id)["status"] == "downloaded"
    assert len(store.reads.history(reg.file_id)) == 2


def test_two_runs_never_claim_the_same_file(store: StatusStore, feed: str) -> None:
    ids = [register(store, feed, f"f{i}.csv", uuid.uuid4().hex * 2).file_id for i in range(40)]
    store.queue(ids, ACTOR)
    claims: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claim(run: str) -> None:
        own = StatusStore(store.dsn)
        barrier.wait()
        claims[run] = [r["id"] for r in own.claim(Actor(dag_id="d", run_id=run, task_id="t"), feed=feed, limit=15)]

    threads = [threading.Thread(target=claim, args=(f"run-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for got in claims.values() for i in got]
    assert len(everything) == len(set(everything)), "a file was claimed by two runs"
    assert len(everything) == 40
    for run, got in claims.items():
        assert all(store.reads.get_file(i)["last_run_id"] == run for i in got)


def test_a_retry_of_the_same_run_takes_back_its_files(store: StatusStore, feed: str) -> None:
    reg = register(store, feed, "a.csv", uuid.uuid4().hex * 2)
    store.queue([reg.file_id], ACTOR)
    assert store.claim(ACTOR, feed=feed)
    other = Actor(dag_id="test", run_id="run-2", task_id="t")
    assert store.claim(other, feed=feed) == []
    retry = Actor(dag_id="test", run_id="run-1", task_id="t", try_number=2)
    assert [r["id"] for r in store.claim(retry, feed=feed)] == [reg.file_id]
