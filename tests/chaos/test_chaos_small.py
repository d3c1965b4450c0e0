"""The chaos run at a small size (FILEGATE_CHAOS_SMALL_FILES, default 100 files): the same faults as `make chaos`,
on a stack of its own with Airflow, and the auditor must find nothing lost, doubled or stuck."""

from __future__ import annotations

import os

import pytest
from harness import Settings, render, run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.mark.timeout(2400)
def test_guarantees_hold_under_faults(tmp_path) -> None:
    settings = Settings(files=int(os.environ.get("FILEGATE_CHAOS_SMALL_FILES", "100")), bursts=5, burst_gap_s=10,
                        home=tmp_path / "chaos", stall_s=300,
                        outage_s=float(os.environ.get("FILEGATE_CHAOS_SMALL_OUTAGE_S", "45")))
    result = run_chaos(settings)
    assert result.passed, render(result)
    # Every kind of fault the schedule plans was injected, so a pass means something.
    injected = set(result.faults)
    assert {"s3_event_duplicated", "s3_event_lost", "sigkill_scheduler", "postgres_restart", "api_5xx",
            "api_outage", "api_outage_ended"} <= injected
    assert any(kind.startswith("sigkill_task") for kind in injected), result.faults
