"""The schema-drift check of one processed file, between the engine and publishing: compares the file's columns
with the feed's current schema version (read from the status store by the caller) and applies the contract's
`schema_drift` policy. `freeze` quarantines the file here, so nothing of it reaches processed/ or Postgres.

The comparison itself is filegate.schema_drift; recording versions and drift is filegate.status.schema_history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from filegate.contracts.model import Contract
from filegate.parsers.base import shown
from filegate.pipeline.engine import EngineResult
from filegate.schema_drift import compact_profile, diff, frozen_reason, verdict

log = logging.getLogger(__name__)


def check_schema(contract: Contract, result: EngineResult, baseline: Mapping[str, Any] | None) -> None:
    """Sets `result.schema_drift` when the file's schema differs from `baseline` (a version: {version, columns,
    profile}); under `freeze` a processed file becomes quarantined with the diff as its reason."""
    if baseline is None or not result.file_schema:
        return  # the feed's first file, or one unreadable before its header
    drift = diff(baseline["columns"], result.file_schema, from_version=baseline.get("version"),
                 current_profile=baseline.get("profile") or {}, file_profile=compact_profile(result.column_stats))
    decided = verdict(contract.schema_drift, drift)
    if decided == "same":
        return
    result.schema_drift = {**drift.as_dict(), "policy": contract.schema_drift, "verdict": decided}
    log.warning("feed %s: %s (schema_drift: %s)", contract.name, drift.summary, contract.schema_drift)
    if decided == "freeze" and result.status == "processed":
        result.status, result.reason = "quarantined", shown(frozen_reason(contract.name, drift))
