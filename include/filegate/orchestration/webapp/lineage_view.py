"""A file's lineage for the Filegate page: the OpenLineage run Filegate emits for it (the same builder as the
tasks: filegate.lineage.run_events), as inputs → job → outputs with their facets, plus what the stack's lineage
receiver holds for the file when FILEGATE_LINEAGE_URL names one."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def file_lineage(store: Any, s3: Any, bucket: str, file_id: int) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    from filegate.contracts import get_contract
    from filegate.lineage.file_run import Locations, load_file_runs
    from filegate.lineage.run_events import file_run_events
    from filegate.orchestration.assets import table_location
    from filegate.settings import load_settings

    runs = load_file_runs(store, s3, bucket, [file_id])
    if not runs:
        return {"file_id": file_id, "finished": False, "inputs": [], "outputs": [], "received": None}
    run = runs[0]
    contract = get_contract(str(run.file["feed"]))
    where = Locations(bucket=bucket, postgres=table_location(), api_base=load_settings().api_url)
    finished = run.file.get("status") in {"processed", "failed", "quarantined"}
    end = json.loads(Serde.to_json(file_run_events(run, contract, where, namespace=_namespace())[-1]))
    return {
        "file_id": file_id,
        "finished": finished,
        "event_type": end["eventType"] if finished else None,
        "job": {"namespace": end["job"]["namespace"], "name": end["job"]["name"],
                "task": ".".join(p for p in (run.file.get("last_dag_id"), run.file.get("last_task_id")) if p),
                "run_id": run.file.get("last_run_id")},
        "rows": run.rows(),
        "inputs": [_dataset(d) for d in end.get("inputs") or []],
        "outputs": [_dataset(d) for d in end.get("outputs") or []],
        "event": end,
        "received": received_events(file_id),
    }


def _dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    facets = dataset.get("facets") or {}
    extra = {**(dataset.get("inputFacets") or {}), **(dataset.get("outputFacets") or {})}
    rows = (extra.get("outputStatistics") or extra.get("dataQualityMetrics") or {}).get("rowCount")
    assertions = (facets.get("dataQualityAssertions") or {}).get("assertions") or []
    fields = (facets.get("schema") or {}).get("fields") or []
    return {"namespace": dataset["namespace"], "name": dataset["name"], "rows": rows,
            "fields": [f"{f['name']} {f.get('type', '')}".strip() for f in fields],
            "assertions": [{"assertion": a["assertion"], "column": a.get("column"), "success": a["success"]}
                           for a in assertions],
            "facets": sorted([*facets, *extra])}


def _namespace() -> str:
    return os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE") or "default"


def received_events(file_id: int) -> list[dict[str, Any]] | None:
    """The events a local receiver holds for the file (type, time, run id), or None without a receiver."""
    base = os.environ.get("FILEGATE_LINEAGE_URL")
    if not base:
        return None
    import requests

    try:
        response = requests.get(f"{base.rstrip('/')}/api/v1/lineage", params={"file_id": file_id}, timeout=2)
        response.raise_for_status()
        return [{"eventType": e.get("eventType"), "eventTime": e.get("eventTime"),
                 "runId": (e.get("run") or {}).get("runId")} for e in response.json().get("events", [])]
    except (requests.RequestException, ValueError) as exc:
        log.warning("lineage receiver %s unreadable: %s", base, exc)
        return None
