"""Builds alert messages: a short subject, a JSON body a person and a machine can both read, and SNS message
attributes (kind, feed, dag_id) so that subscribers can filter, e.g. one team's feeds to one e-mail list."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

SUBJECT_MAX = 100  # SNS: at most 100 printable ASCII characters, no line breaks
REASON_MAX = 2_000


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    body: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def sns_subject(self) -> str:
        ascii_only = self.subject.encode("ascii", "replace").decode().replace("?", "-")
        return re.sub(r"\s+", " ", ascii_only).strip()[:SUBJECT_MAX]

    @property
    def message(self) -> str:
        return json.dumps(self.body, indent=2, default=str, ensure_ascii=False)


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow 3 UI."""
    return f"{_base(base_url)}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def task_log_url(base_url: str, dag_id: str, run_id: str, task_id: str, try_number: int | None = None,
                 map_index: int | None = None) -> str:
    """The task instance's log in the Airflow 3 UI (the same URL Airflow's own TaskInstance.log_url builds)."""
    url = f"{dag_run_url(base_url, dag_id, run_id)}/tasks/{quote(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    if try_number:
        url += f"?try_number={try_number}"
    return url


def _short(text: str | None, limit: int = REASON_MAX) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def file_needs_attention(file: Mapping[str, Any], *, dag_id: str | None, run_id: str | None,
                         task_id: str | None, log_url: str | None) -> Alert:
    """A file ended `failed` or `quarantined`: which one, why, and where to look."""
    status = str(file["status"])
    feed = str(file["feed"])
    reason = _short(file.get("error")) or "(no reason recorded)"
    body = {
        "alert": f"file_{status}",
        "summary": f"{feed}/{file['name']} is {status}: {reason}",
        "feed": feed,
        "file_id": file["id"],
        "file": file["name"],
        "raw_key": file.get("raw_key"),
        "status": status,
        "reason": reason,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "log_url": log_url,
        "next_step": (f"inspect with `filegate history {file['id']}`; after fixing the cause, trigger the "
                      f"reprocess_files DAG with file_ids [{file['id']}]"),
    }
    return Alert(kind=f"file_{status}", subject=f"Filegate: {feed} file {file['name']} {status}", body=body,
                 attributes={"kind": f"file_{status}", "feed": feed, **({"dag_id": dag_id} if dag_id else {})})


def task_failed(*, dag_id: str, run_id: str, task_id: str, try_number: int | None, reason: str | None,
                log_url: str | None) -> Alert:
    body = {"alert": "task_failed", "summary": f"task {dag_id}.{task_id} failed: {_short(reason, 300)}",
            "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
            "reason": _short(reason), "log_url": log_url}
    return Alert(kind="task_failed", subject=f"Filegate: task {dag_id}.{task_id} failed", body=body,
                 attributes={"kind": "task_failed", "dag_id": dag_id})


def dag_run_failed(*, dag_id: str, run_id: str | None, reason: str | None, failed_task: str | None,
                   log_url: str | None, run_url: str | None) -> Alert:
    body = {"alert": "dag_run_failed",
            "summary": f"DAG run {dag_id} / {run_id} failed" + (f" at task {failed_task}" if failed_task else ""),
            "dag_id": dag_id, "run_id": run_id, "reason": _short(reason), "failed_task": failed_task,
            "log_url": log_url, "run_url": run_url}
    return Alert(kind="dag_run_failed", subject=f"Filegate: DAG run {dag_id} failed", body=body,
                 attributes={"kind": "dag_run_failed", "dag_id": dag_id})


def run_summary(*, dag_id: str, run_id: str, files: Sequence[Mapping[str, Any]], run_url: str | None) -> Alert:
    """An optional summary of a successful run: how many files ended in which status."""
    counts: dict[str, int] = {}
    for file in files:
        counts[str(file["status"])] = counts.get(str(file["status"]), 0) + 1
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no files"
    body = {"alert": "run_summary", "summary": f"{dag_id} run {run_id}: {text}", "dag_id": dag_id,
            "run_id": run_id, "counts": counts, "run_url": run_url,
            "files": [{"file_id": f["id"], "feed": f["feed"], "file": f["name"], "status": f["status"],
                       "reason": _short(f.get("error"), 300)} for f in files[:100]]}
    return Alert(kind="run_summary", subject=f"Filegate: {dag_id} run finished ({text})", body=body,
                 attributes={"kind": "run_summary", "dag_id": dag_id})


def delivery_slot(slot: Mapping[str, Any], *, local_time: str, calendar_url: str | None) -> Alert:
    """An expected delivery is `missed` (its grace period ended without its files) or `late` (they came after it):
    which feed and slot, what was expected, what came, and how late."""
    state = str(slot["state"])
    feed = str(slot["feed"])
    files = list(slot.get("files") or [])
    delay = slot.get("delay_seconds")
    if state == "late":
        summary = (f"{feed}: the delivery expected at {local_time} came late, {_duration(delay)} after the slot "
                   f"time ({len(files)} of {slot['files_expected']} file(s))")
    else:
        summary = (f"{feed}: the delivery expected at {local_time} is missed: {len(files)} of "
                   f"{slot['files_expected']} file(s) matching {slot['pattern']!r} by {slot['deadline_at']}")
    body = {
        "alert": f"delivery_{state}",
        "summary": summary,
        "feed": feed,
        "state": state,
        "slot_local": local_time,
        "expected_at": slot["expected_at"],
        "deadline_at": slot["deadline_at"],
        "pattern": slot["pattern"],
        "files_expected": slot["files_expected"],
        "files": [{"file_id": f.get("file_id"), "file": f.get("name"), "arrived_at": f.get("arrived_at")}
                  for f in files[:50]],
        "delay_seconds": delay,
        "calendar_url": calendar_url,
        "next_step": ("ask the partner for the files; they count for this slot whenever they arrive"
                      if state == "missed" else "no action needed unless lateness repeats"),
    }
    return Alert(kind=f"delivery_{state}", subject=f"Filegate: {feed} delivery {local_time} {state}", body=body,
                 attributes={"kind": f"delivery_{state}", "feed": feed})


def _duration(seconds: int | None) -> str:
    if not seconds:
        return "0 min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def schema_drift(file: Mapping[str, Any], drift: Mapping[str, Any], *, dag_id: str | None,
                 log_url: str | None) -> Alert:
    """A file was accepted with a schema change its feed warns about (`schema_drift: warn`): what changed, from
    which version to which (the Filegate page shows the diff on the file's page)."""
    feed = str(file["feed"])
    body = {
        "alert": "schema_drift",
        "summary": f"{feed}/{file['name']}: {_short(str(drift['summary']), 500)}",
        "feed": feed,
        "file_id": file["id"],
        "file": file["name"],
        "policy": drift.get("policy"),
        "from_version": drift.get("from_version"),
        "to_version": drift.get("to_version"),
        "changes": [{k: c.get(k) for k in ("kind", "column", "message")}
                    for c in list(drift.get("changes") or [])[:50]],
        "dag_id": dag_id,
        "log_url": log_url,
        "next_step": ("the file was loaded and its schema is the feed's current version now; update consumers, or "
                      "set schema_drift: freeze in the feed's contract to hold such files back"),
    }
    return Alert(kind="schema_drift", subject=f"Filegate: {feed} schema changed in {file['name']}", body=body,
                 attributes={"kind": "schema_drift", "feed": feed, **({"dag_id": dag_id} if dag_id else {})})
