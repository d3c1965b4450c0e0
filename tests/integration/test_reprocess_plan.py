"""Choosing files to reprocess, on the real status store: filters, clear refusals, requeue with history."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from filegate.pipeline.reprocess import ReprocessParamsError, parse_request, plan, requeue
from filegate.status import Actor, Status, StatusStore

pytestmark = pytest.mark.integration
ACTOR = Actor(dag_id="reprocess_files", run_id="r-1", task_id="requeue_files", try_number=1)


@pytest.fixture
def world(local_stack):
    store = StatusStore.connect(local_stack.db_url)
    feed = f"plan_{uuid.uuid4().hex[:8]}"
    ids = {}
    for name, day, final in [("a.csv", date(2026, 11, 20), Status.FAILED), ("b.csv", date(2026, 11, 21),
                             Status.QUARANTINED), ("c.csv", date(2026, 11, 22), Status.PROCESSED)]:
        reg = store.register(feed=feed, source="s3", raw_key=f"raw/{feed}/{day:%Y/%m/%d}/{name}", name=name,
                             sha256=uuid.uuid4().hex * 2, size_bytes=1, actor=ACTOR, arrived_on=day)
        store.queue([reg.file_id], ACTOR)
        store.claim(ACTOR, file_ids=[reg.file_id])
        store.transition(reg.file_id, final, ACTOR, error=None if final == Status.PROCESSED else f"{name} broke")
        ids[name] = reg.file_id
    pickup = store.record_pickup_failure(feed=feed, source="ftp", source_path=f"/in/{feed}/d.csv",
                                         raw_key=f"raw/{feed}/2026/11/20/d.csv", name="d.csv", size_bytes=None,
                                         error="connection refused", actor=ACTOR, arrived_on=date(2026, 11, 20))
    ids["pickup"] = pickup
    return store, feed, ids


def chosen(store, known_feed, **params):
    feeds = [known_feed]
    return sorted(r["name"] for r in plan(store, parse_request(params, feeds), feeds).files)


def test_filters_combine(world) -> None:
    store, feed, ids = world
    assert chosen(store, feed, feed=feed) == ["a.csv", "b.csv"]  # failed + quarantined; the pickup has no raw copy
    assert chosen(store, feed, feed=feed, statuses=["processed"]) == ["c.csv"]
    assert chosen(store, feed, feed=feed, arrived_from="2026-11-21", statuses=["failed", "quarantined", "processed"]
                  ) == ["b.csv", "c.csv"]
    assert chosen(store, feed, arrived_to="2026-11-20", feed=feed) == ["a.csv"]
    assert chosen(store, feed, file_ids=[ids["b.csv"]]) == ["b.csv"]


def test_refusals_name_the_files(world) -> None:
    store, feed, ids = world
    with pytest.raises(ReprocessParamsError, match=f"#{ids['c.csv']} is processed, not one of statuses"):
        chosen(store, feed, file_ids=[ids["c.csv"]])
    with pytest.raises(ReprocessParamsError, match="no file #999999999 matches"):
        chosen(store, feed, file_ids=[ids["a.csv"], 999_999_999])
    with pytest.raises(ReprocessParamsError, match="never reached raw/"):
        chosen(store, feed, file_ids=[ids["pickup"]])
    with pytest.raises(ReprocessParamsError, match="nothing to reprocess"):
        chosen(store, feed, feed=feed, arrived_from="2027-01-01")


def test_requeue_writes_history_and_skips_what_changed(world) -> None:
    store, feed, ids = world
    selection = plan(store, parse_request({"feed": feed}, [feed]), [feed]).files
    assert requeue(store, selection, ACTOR) == [ids["a.csv"], ids["b.csv"]]
    assert requeue(store, selection, ACTOR) == []  # already queued: queued → queued is not a transition
    event = store.reads.history(ids["a.csv"])[-1]
    assert (event["from_status"], event["to_status"]) == ("failed", "queued")
    assert event["message"].startswith(f"requeued for reprocessing from raw/{feed}/2026/11/20/a.csv (was failed)")
    assert (event["dag_id"], event["run_id"], event["task_id"], event["try_number"]) == (
        "reprocess_files", "r-1", "requeue_files", 1)
    assert store.reads.get_file(ids["a.csv"])["error"] is None
