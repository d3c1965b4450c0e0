"""The Lambda functions Filegate deploys: name → handler, event schema, timeout, memory, /tmp size.

The local stack's Lambda endpoint, the deploy template (infra/aws) and the DAG's invoker all read this table,
so all of them run exactly these handlers with these limits. `event` names functions/schemas/<event>.schema.json.
"""

from __future__ import annotations

PROCESS_FILE = "filegate-process-file"
PLAN_PARTS = "filegate-plan-parts"
CONVERT_PART = "filegate-convert-part"
MERGE_PARTS = "filegate-merge-parts"
SPLIT_PDF = "filegate-split-pdf"

FUNCTIONS: dict[str, dict[str, object]] = {
    PROCESS_FILE: {
        "handler": "filegate.lambdas.process_file.handler",
        "event": "process_file",
        "timeout": 900,
        "memory": 3008,
        "ephemeral_storage": 10240,
        "description": "Runs one raw file through the engine (S3 → S3) and returns the outcome",
    },
    PLAN_PARTS: {
        "handler": "filegate.lambdas.plan_parts.handler",
        "event": "plan_parts",
        "timeout": 900,
        "memory": 512,
        "ephemeral_storage": 512,
        "description": "Cuts a large delimited file into byte ranges at record boundaries (streams, no /tmp)",
    },
    CONVERT_PART: {
        "handler": "filegate.lambdas.convert_part.handler",
        "event": "convert_part",
        "timeout": 900,
        "memory": 3008,
        "ephemeral_storage": 10240,
        "description": "Runs one byte range of a raw file through the engine into a staging prefix",
    },
    MERGE_PARTS: {
        "handler": "filegate.lambdas.merge_parts.handler",
        "event": "merge_parts",
        "timeout": 900,
        "memory": 3008,
        "ephemeral_storage": 10240,
        "description": "Merges part outputs (Parquet, rejects, profiles) and publishes them like one run",
    },
    SPLIT_PDF: {
        "handler": "filegate.lambdas.split_pdf.handler",
        "event": "split_pdf",
        "timeout": 300,
        "memory": 1024,
        "ephemeral_storage": 2048,
        "description": "Splits a PDF into new PDFs by the page map given with the upload",
    },
}


def function_timeout(name: str) -> int:
    spec = FUNCTIONS.get(name)
    return int(spec["timeout"]) if spec else 900  # type: ignore[call-overload]


def event_name(name: str) -> str:
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise KeyError(f"unknown Lambda function {name!r} (registry: {', '.join(sorted(FUNCTIONS))})")
    return str(spec["event"])
