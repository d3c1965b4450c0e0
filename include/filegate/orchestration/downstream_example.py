"""An example consumer of a feed's output asset: a DAG that runs whenever files of the feed are processed and
reads, from each triggering asset event, which file it was and which Parquet keys it wrote. Teams copy it as the
start of their own downstream DAG (a mart refresh, an export, a model retrain)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import dag, task

from filegate.contracts.model import Contract
from filegate.orchestration.assets import parquet_asset
from filegate.orchestration.policy import Tag, dag_kwargs

log = logging.getLogger(__name__)


def doc_for(contract: Contract, dag_id: str) -> str:
    asset = parquet_asset(contract)
    return f"""
# {dag_id}

Example downstream DAG: scheduled on the asset `{asset.name}` (`{asset.uri}`), the Parquet output of feed
`{contract.name}`. Each file that `process_{contract.name}`, `sense_{contract.name}` or `reprocess_files` brings to
`processed` adds one asset event; Airflow starts this DAG after new events and hands them over as
`triggering_asset_events`. Each event's extra: `file_id`, `feed`, `file`, `sha256`, `rows` (valid rows
published), `rows_in`, `rows_rejected`, `raw_key`, `keys` (the Parquet keys written) and `summary_key`.

`new_files` logs and returns them: replace it with the real work (refresh a mart from exactly those keys).
"""


def build_downstream_dag(contract: Contract, dag_id: str) -> Any:
    asset = parquet_asset(contract)

    @dag(dag_id=dag_id, schedule=[asset], max_active_runs=1,
         **dag_kwargs(owner=contract.owner, tags=[Tag.REPORTING, "downstream", contract.name],
                      doc_md=doc_for(contract, dag_id)))
    def downstream() -> None:
        @task(doc_md="Lists the files whose processing triggered this run, from the asset events' extra.")
        def new_files(**context: Any) -> list[dict[str, Any]]:
            files = []
            for event in context["triggering_asset_events"].get(asset, []):
                extra = dict(event.extra or {})
                log.info("file %s (%s): %s rows, Parquet keys %s", extra.get("file_id"), extra.get("file"),
                         extra.get("rows"), extra.get("keys"))
                files.append(extra)
            log.info("%d new file(s) of feed %s", len(files), contract.name)
            return files

        new_files()

    return downstream()
