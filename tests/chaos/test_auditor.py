"""The chaos auditor must be able to fail: each check is shown a crafted bad state and must count it. A clean state
built from the same workload passes, so the failures are the crafted faults and nothing else."""

from __future__ import annotations

import copy
import itertools
import posixpath
from datetime import date

import pytest
from auditor import FAILING_CHECKS, Observed, audit, legal_history, md5_of
from workload import API_FEED, PG_FEED, PlannedFile, plan

from filegate.storage import keys

PATH = [None, "downloaded", "queued", "processing", "processed"]


def events(*statuses: str | None) -> list[dict[str, str | None]]:
    return [{"from_status": a, "to_status": b} for a, b in itertools.pairwise(statuses)]


def clean_state(files: list[PlannedFile]) -> Observed:
    """What a correct Filegate leaves behind: the first of identical files processed, the others duplicates."""
    seen = Observed()
    first_of: set[tuple[str, str]] = set()
    for number, planned in enumerate(files, start=1):
        key = keys.raw_key(planned.feed, planned.day, planned.name)
        if key in seen.raw_objects:  # the upload endpoint's suffix for a name already taken
            key = key.replace(".csv", f"_{number}.csv")
        planned.raw_key = key
        seen.raw_objects[key] = md5_of(planned.body)
        content = (planned.feed, planned.sha256)
        if content in first_of:
            seen.files.append({"id": number, "feed": planned.feed, "raw_key": key, "status": "duplicate",
                               "error": "same content as an earlier file"})
            seen.events[number] = events(None, "downloaded", "duplicate")
            continue
        first_of.add(content)
        seen.files.append({"id": number, "feed": planned.feed, "raw_key": key, "status": "processed", "error": None})
        seen.events[number] = events(*PATH)
        stem = keys.file_stem(posixpath.basename(key), planned.sha256)
        seen.processed_keys += [f"processed/{planned.feed}/_summaries/{stem}.json",
                                f"processed/{planned.feed}/arrival_date={planned.day}/{stem}.parquet"]
        if planned.feed == PG_FEED:
            seen.pg_rows += [(r.id, r.amount, r.label, planned.sha256) for r in planned.valid_rows]
        if planned.feed == API_FEED:
            seen.api_records += [{"id": r.id, "amount": float(r.amount), "label": r.label} for r in planned.valid_rows]
    return seen


@pytest.fixture(scope="module")
def workload() -> list[PlannedFile]:
    return plan(40, seed=1, today=date(2026, 12, 3), large_files=1).files


@pytest.fixture
def state(workload) -> Observed:
    return clean_state(copy.deepcopy(workload))


def failing(report) -> dict[str, int]:
    return {name: report.counts[name] for name in FAILING_CHECKS if report.counts[name]}


def test_a_clean_state_passes(workload, state) -> None:
    report = audit(workload, state)
    assert failing(report) == {} and report.passed
    assert report.counts["status_processed"] == len(workload) - 3 and report.counts["status_duplicate"] == 3


def first(state: Observed, feed: str, status: str = "processed") -> dict:
    return next(r for r in state.files if r["feed"] == feed and r["status"] == status)


def test_a_lost_file_is_counted(workload, state) -> None:
    key = first(state, PG_FEED)["raw_key"]
    del state.raw_objects[key]
    state.files = [r for r in state.files if r["raw_key"] != key]
    assert failing(audit(workload, state))["lost"] == 1


def test_an_object_without_a_row_is_counted(workload, state) -> None:
    state.files.remove(first(state, API_FEED))
    assert "unregistered" in failing(audit(workload, state))


def test_an_object_ingested_twice_is_counted(workload, state) -> None:
    key, md5 = next(iter(state.raw_objects.items()))
    state.raw_objects[key.replace(".csv", "-again.csv")] = md5
    assert failing(audit(workload, state))["duplicate_raw_objects"] == 1


def test_two_rows_for_one_object_are_counted(workload, state) -> None:
    twin = dict(first(state, PG_FEED), id=10_000)
    state.files.append(twin)
    state.events[10_000] = events(*PATH)
    assert failing(audit(workload, state))["duplicate_file_rows"] == 1


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_a_stuck_file_is_counted(workload, state, status) -> None:
    row = first(state, "chaos_up")
    row["status"] = status
    state.events[row["id"]] = events(*PATH[: PATH.index(status) + 1])
    found = failing(audit(workload, state))
    assert found["stuck"] == 1 and found["not_terminal"] == 1


def fail(state: Observed, reason: str) -> None:
    """An FTP file that failed: its status and history say so, and it published nothing."""
    row = first(state, "chaos_ftp")
    row["status"], row["error"] = "failed", reason
    state.events[row["id"]] = events(None, "downloaded", "queued", "processing", "failed")
    stem = posixpath.basename(row["raw_key"]).removesuffix(".csv")
    state.processed_keys = [k for k in state.processed_keys if f"/{stem}-" not in k]


def test_a_failed_file_without_a_reason_is_counted(workload, state) -> None:
    fail(state, " ")
    report = audit(workload, state)
    assert failing(report) == {"no_reason": 1} and report.counts["not_processed"] == 1


def test_a_failed_file_with_a_reason_is_a_figure_not_a_failure(workload, state) -> None:
    fail(state, "Lambda timed out on the task's last try")
    report = audit(workload, state)
    assert report.passed and report.counts["not_processed"] == 1
    assert "Lambda timed out" in report.problems["not_processed"][0]


def test_a_duplicate_processed_twice_is_a_wrong_outcome(workload, state) -> None:
    row = first(state, PG_FEED, "duplicate")
    row["status"], row["error"] = "processed", None
    state.events[row["id"]] = events(*PATH)
    assert "wrong_outcome" in failing(audit(workload, state))


@pytest.mark.parametrize(("history", "wrong"), [
    ([None, "downloaded", "processing", "processed"], "not a lifecycle transition"),
    ([None, "downloaded", "queued", "processing"], "history ends processing"),
    (["queued", "processing", "processed"], "not from nothing"),
])
def test_an_illegal_history_is_counted(workload, state, history, wrong) -> None:
    row = first(state, API_FEED)
    state.events[row["id"]] = events(*history)
    assert failing(audit(workload, state))["illegal_history"] == 1
    assert wrong in (legal_history(state.events[row["id"]], "processed") or "")


def test_a_broken_chain_of_events_is_illegal() -> None:
    broken = events(None, "downloaded", "queued") + events("processing", "processed")
    assert "starts from processing" in (legal_history(broken, "processed") or "")
    assert legal_history([*events(*PATH), {"from_status": "processed", "to_status": "processed"}], "processed") is None


def test_postgres_rows_missing_doubled_or_changed_are_counted(workload, state) -> None:
    removed = state.pg_rows.pop()
    assert failing(audit(workload, state))["pg_missing_rows"] == 1
    state.pg_rows += [removed, removed]
    assert failing(audit(workload, state))["pg_duplicate_rows"] == 1
    state.pg_rows.pop()
    state.pg_rows[-1] = (removed[0], "0.01", removed[2], removed[3])
    assert failing(audit(workload, state))["pg_wrong_content"] == 1


def test_rows_of_a_file_that_is_not_processed_are_counted(workload, state) -> None:
    row = first(state, PG_FEED)
    row["status"], row["error"] = "quarantined", "audit failed"
    state.events[row["id"]] = events(None, "downloaded", "queued", "processing", "quarantined")
    assert failing(audit(workload, state))["pg_duplicate_rows"] > 0


def test_api_records_missing_twice_or_foreign_are_counted(workload, state) -> None:
    record = state.api_records.pop()
    assert failing(audit(workload, state))["api_missing_records"] == 1
    state.api_records += [record, record]
    assert failing(audit(workload, state))["api_duplicate_records"] == 1
    state.api_records.append({"id": 999_999_999, "amount": 1, "label": "x"})
    assert failing(audit(workload, state))["api_unexpected_records"] == 1


def test_outputs_missing_or_left_over_are_counted(workload, state) -> None:
    summary = next(k for k in state.processed_keys if "/_summaries/" in k)
    state.processed_keys.remove(summary)
    assert failing(audit(workload, state))["outputs_missing"] == 1
    state.processed_keys += [summary, summary.replace("_summaries/", "_summaries/stray-")]
    assert failing(audit(workload, state))["outputs_extra"] == 1


def test_rows_and_outputs_of_a_stuck_file_are_counted_apart_from_duplicates(workload, state) -> None:
    row = first(state, PG_FEED)
    row["status"] = "processing"
    state.events[row["id"]] = events(*PATH[:4])
    report = audit(workload, state)
    found = failing(report)
    assert found["stuck"] == 1 and "pg_duplicate_rows" not in found and "outputs_extra" not in found
    assert report.counts["pg_rows_of_unfinished_files"] > 0 and report.counts["outputs_of_unfinished_files"] == 1
