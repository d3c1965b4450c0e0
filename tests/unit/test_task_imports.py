"""The register and deliver steps of `process_<feed>` import only what they use: not the engine, whose imports
(pyarrow.compute, and pandas, which pyarrow imports on its first `pa.array`) take about 2 s of every task start
(docs/benchmarks.md, where the time goes in upload → processed). Only `process_files` needs them.

Deterministic, not timed: a fresh interpreter imports exactly what each task callable imports, in order.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ENGINE = ["filegate.pipeline.engine", "pyarrow.compute", "pandas"]

# What the task callables in filegate/orchestration/process_feed.py import (keep in step with them).
TASK_IMPORTS = {
    "register_arrivals": ["filegate.contracts", "filegate.ingestion.arrivals", "filegate.orchestration.connections",
                          "filegate.orchestration.task_context"],
    "deliver_records": ["filegate.orchestration.file_steps", "filegate.orchestration.connections",
                        "filegate.pipeline.steps"],
}

PROBE = """
import importlib, json, sys
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
print(json.dumps([m for m in json.loads(sys.argv[2]) if m in sys.modules]))
"""


@pytest.mark.parametrize("task", sorted(TASK_IMPORTS))
def test_a_step_that_does_not_run_the_engine_does_not_import_it(task: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(TASK_IMPORTS[task]), json.dumps(ENGINE)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_processing_step_still_finds_the_engine() -> None:
    """The engine is imported inside process_files: a broken import there must still fail a test, not a task."""
    from filegate.pipeline import steps

    assert "process_routed" not in vars(steps)
    from filegate.pipeline.heavy import process_routed

    assert callable(process_routed)
