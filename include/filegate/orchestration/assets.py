"""A feed's outputs as Airflow Assets, and one asset event per processed file.

Each feed has a Parquet asset (its `processed/<feed>/` prefix) and, when it loads Postgres, a table asset
(`postgres://host:port/database/schema/table`, the postgres provider's URI rules). The tasks that finish files
(`deliver_records` of process_<feed>, sense_<feed> and reprocess_files) declare an AssetAlias as outlet and add,
through it, one event per file that reached `processed`, to each output asset, with the file's facts as extra:
an alias event per distinct extra is how one task run emits several events to one asset, and a run that
finished no file emits none (a plain Asset outlet would emit an empty event on every run).
A downstream DAG schedules on the asset and reads `triggering_asset_events` (dags/refresh_orders_mart.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from filegate.contracts.model import Contract
from filegate.settings import load_settings
from filegate.storage import keys

if TYPE_CHECKING:  # the tasks use it; a DAG file's parse needs only the asset names and URIs
    from filegate.lineage.file_run import FileRun

log = logging.getLogger(__name__)
REPROCESS_ALIAS = "filegate_reprocessed_outputs"


def parquet_asset(contract: Contract) -> Asset:
    return Asset(name=f"filegate_{contract.name}_parquet",
                 # Airflow stores s3 URIs without the trailing slash; spelled the same here so names match
                 uri=f"s3://{load_settings().bucket}/{keys.processed_prefix(contract.name).rstrip('/')}")


def table_location() -> str | None:
    """`postgres://host:port/database` of the default destination database, None when none is configured."""
    from filegate.lineage.file_run import postgres_location

    dsn = load_settings().db_url
    return postgres_location(dsn) if dsn else None


def table_asset(contract: Contract) -> Asset | None:
    """The feed's Postgres table, or None (no Postgres destination, or its DSN is unknown here)."""
    destination = contract.destinations.postgres
    if destination is None:
        return None
    if destination.dsn_env:
        import os

        from filegate.lineage.file_run import postgres_location

        dsn = os.environ.get(destination.dsn_env)
        location = postgres_location(dsn) if dsn else None
    else:
        location = table_location()
    if location is None:
        log.warning("feed %s: no DSN for its Postgres destination here; its table asset is not defined",
                    contract.name)
        return None
    return Asset(name=f"filegate_{contract.name}_table",
                 uri=f"{location}/{destination.db_schema}/{destination.table}")


def output_assets(contract: Contract) -> list[Asset]:
    return [a for a in (parquet_asset(contract), table_asset(contract)) if a is not None]


def outputs_alias(feed: str) -> AssetAlias:
    """The outlet of a feed's finishing task: events added through it land on the feed's output assets."""
    return AssetAlias(name=f"filegate_{feed}_outputs")


def reprocess_alias() -> AssetAlias:
    return AssetAlias(name=REPROCESS_ALIAS)


def event_extra(run: FileRun, contract: Contract, asset: Asset) -> dict[str, Any]:
    """What a consumer needs to pick up one file's output without asking Filegate: ids, rows, content hash
    and the keys (Parquet) or table (Postgres) it wrote."""
    rows = run.rows()
    outputs = run.outputs
    extra: dict[str, Any] = {"file_id": run.id, "feed": contract.name, "file": str(run.file["name"]),
                             "sha256": run.file.get("sha256"), "rows": rows["valid"], "rows_in": rows["in"],
                             "rows_rejected": rows["rejected"], "raw_key": run.file.get("raw_key")}
    if asset.uri.startswith("s3://"):
        extra["keys"] = [str(k) for k in outputs.get("parquet") or []]
        extra["summary_key"] = outputs.get("summary")
    else:
        loaded = outputs.get("postgres") or {}
        extra["table"] = loaded.get("table")
        extra["rows_loaded"] = loaded.get("rows")
    return extra


def add_asset_events(context: dict[str, Any], contract: Contract, runs: list[FileRun]) -> int:
    """Adds one event per processed file to each of the feed's output assets, through the task's alias outlets;
    returns the events added (none when the task declares no alias)."""
    task = context.get("task")
    aliases = [o for o in (getattr(task, "outlets", None) or []) if isinstance(o, AssetAlias)]
    processed = [r for r in runs if r.file.get("status") == "processed"]
    if not aliases or not processed:
        return 0
    outlet_events = context["outlet_events"]
    added = 0
    for asset in output_assets(contract):
        if asset.uri.startswith("postgres") and not any(r.outputs.get("postgres") for r in processed):
            continue
        for run in processed:
            extra = event_extra(run, contract, asset)
            for alias in aliases:
                outlet_events[alias].add(asset, extra=extra)
            added += 1
    log.info("feed %s: %d asset event(s) for %d processed file(s)", contract.name, added, len(processed))
    return added
