"""OpenLineage events of every finished file, sent through the OpenLineage provider's own client and
configuration ([openlineage] transport / config_path / conn, or OPENLINEAGE_URL): the user's lineage backend.

Lineage never fails or stalls a file: nothing here raises, the provider's adapter logs a failed send, and a
sender thread does the sending while the task waits at most FILEGATE_LINEAGE_BUDGET_S seconds (default 30) for
it: past that the task goes on and the events not yet sent are dropped with a warning naming the files (a backend
that is down or hangs, with the transport's own retries and timeouts, costs one budget per task, never one per
file). With the provider disabled (no transport configured) nothing is built or sent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

from filegate.contracts.model import Contract
from filegate.lineage.file_run import FileRun, Locations
from filegate.lineage.run_events import ParentRun, file_run_events
from filegate.orchestration.assets import table_location
from filegate.settings import load_settings

log = logging.getLogger(__name__)


def enabled() -> bool:
    try:
        from airflow.providers.openlineage import conf
    except ImportError:  # provider not installed: no lineage
        return False
    return not conf.is_disabled()


@cache
def _adapter() -> Any:
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    return OpenLineageAdapter()


def namespace() -> str:
    from airflow.providers.openlineage import conf

    return str(conf.namespace())


def locations(api_base: str | None = None) -> Locations:
    settings = load_settings()
    return Locations(bucket=settings.bucket, postgres=table_location(), api_base=api_base or settings.api_url)


def parent_of(context: dict[str, Any]) -> ParentRun | None:
    """The Airflow task run, named as the provider's listener names it (so a backend links the two)."""
    try:
        from airflow.providers.openlineage.plugins.macros import (
            lineage_job_name,
            lineage_job_namespace,
            lineage_root_job_name,
            lineage_root_run_id,
            lineage_run_id,
        )

        ti = context["ti"]
        return ParentRun(run_id=lineage_run_id(ti), job_namespace=lineage_job_namespace(),
                         job_name=lineage_job_name(ti), root_run_id=lineage_root_run_id(ti),
                         root_job_name=lineage_root_job_name(ti))
    except Exception as exc:  # lineage without a parent beats no lineage
        log.warning("OpenLineage parent run unknown (%s); events go without a parent facet", exc)
        return None


def emit_file_lineage(context: dict[str, Any], contract: Contract, runs: Iterable[FileRun],
                      api_base: str | None = None) -> int:
    """Sends START and COMPLETE/FAIL of each finished file; returns the events sent within the budget."""
    if not enabled():
        return 0
    try:
        budget = float(os.environ.get("FILEGATE_LINEAGE_BUDGET_S") or 30)
        where, parent, ns = locations(api_base), parent_of(context), namespace()
        finished = [r for r in runs if r.file.get("status") in {"processed", "failed", "quarantined"}]
        events = [(run.id, event) for run in finished
                  for event in file_run_events(run, contract, where, namespace=ns, parent=parent)]
        adapter = _adapter()
    except Exception:
        log.warning("OpenLineage events of feed %s not built", contract.name, exc_info=True)
        return 0
    sent: list[int] = []
    stop = threading.Event()

    def send() -> None:
        for file_id, event in events:
            if stop.is_set():
                return
            try:
                adapter.emit(event)  # the adapter logs and swallows transport errors
            except Exception:
                log.warning("OpenLineage event of file %s not sent", file_id, exc_info=True)
            sent.append(file_id)

    sender = threading.Thread(target=send, name="filegate-openlineage", daemon=True)
    started = time.monotonic()
    sender.start()
    sender.join(budget)
    if sender.is_alive():
        stop.set()
        unsent = sorted({file_id for file_id, _ in events[len(sent):]})
        log.warning("OpenLineage: %.0f s budget spent, %d of %d event(s) sent; lineage of %d file(s) dropped: %s",
                    budget, len(sent), len(events), len(unsent), unsent[:20])
    else:
        log.info("OpenLineage: %d event(s) for %d file(s) of feed %s in %.1f s", len(sent), len(finished),
                 contract.name, time.monotonic() - started)
    return len(sent)
