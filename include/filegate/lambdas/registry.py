"""The Lambda functions Filegate deploys: name → handler, timeout, memory. The local stack's Lambda endpoint
and the deploy template both read this table, so both run exactly these handlers."""

from __future__ import annotations

FUNCTIONS: dict[str, dict[str, object]] = {
    "filegate-process-file": {
        "handler": "filegate.lambdas.process_file.handler",
        "timeout": 900,
        "memory": 2048,
        "description": "Runs one raw file through the engine (S3 → S3) and returns the outcome",
    },
}
