"""Which Lambda functions the local endpoint serves: the library's registry plus any extras."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def registry_functions() -> dict[str, dict[str, Any]]:
    try:
        from filegate.functions.catalog import FUNCTIONS
    except Exception as exc:  # the library is optional for the stack; say why it is missing
        logger.warning("no Lambda registry (filegate.functions.catalog: %s); only extra functions served", exc)
        return {}
    return {name: dict(spec) for name, spec in FUNCTIONS.items()}


def extra_functions_from_env() -> dict[str, dict[str, Any]]:
    """FILEGATE_LAMBDA_FUNCTIONS: path to a JSON file {name: {handler, timeout, memory, env}}."""
    path = os.environ.get("FILEGATE_LAMBDA_FUNCTIONS")
    if not path:
        return {}
    data: dict[str, dict[str, Any]] = json.loads(Path(path).read_text())
    return data


def endpoint_config(
    *,
    extra: dict[str, dict[str, Any]],
    pythonpath: list[str],
    task_root: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    functions = {**registry_functions(), **extra_functions_from_env(), **extra}
    for name, spec in functions.items():
        if "handler" not in spec:
            raise ValueError(f"Lambda function {name!r} has no handler")
    return {"functions": functions, "pythonpath": pythonpath, "task_root": str(task_root), "env": env}
