"""What other systems learn when a task finishes files: an asset event per processed file on the feed's output
assets (filegate.orchestration.assets) and the OpenLineage events of every finished file
(filegate.orchestration.lineage). Neither may fail the files: errors are logged, never raised."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def announce_finished_files(context: dict[str, Any], feed_name: str, file_ids: Iterable[int]) -> None:
    ids = list(file_ids)
    if not ids:
        return
    try:
        from filegate.contracts import get_contract
        from filegate.lineage.file_run import load_file_runs
        from filegate.orchestration.assets import add_asset_events
        from filegate.orchestration.connections import s3_client, status_store
        from filegate.orchestration.lineage import emit_file_lineage, enabled
        from filegate.settings import load_settings

        contract = get_contract(feed_name)
        lineage = enabled()
        # The summary document (schemas) is read only for lineage; asset events need the status store alone.
        runs = load_file_runs(status_store(), s3_client() if lineage else None, load_settings().bucket, ids)
        add_asset_events(context, contract, runs)
        if lineage:
            emit_file_lineage(context, contract, runs, api_base=_api_base(contract))
    except Exception:
        log.warning("asset events / lineage of feed %s files %s not sent", feed_name, ids[:20], exc_info=True)


def _api_base(contract: Any) -> str | None:
    if contract.destinations.api is None:
        return None
    from filegate.orchestration.connections import api_target

    target = api_target(contract)
    return getattr(target, "base_url", None) if target is not None else None
