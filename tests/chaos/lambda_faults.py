"""The chaos run's `filegate-process-file`: Filegate's own handler, except that the first invocation for some
files fails, as Lambda does: a handler error for one file, a timeout (sleeping past the function's limit) for the
next. Whether a file's first invocation faulted is kept as a marker file, so the retry runs the real handler and
the harness can count the faults it injected.

Served by the stack's Lambda endpoint (the harness lists this module in `extra_functions`); CHAOS_LAMBDA_DIR names
the marker folder and CHAOS_LAMBDA_SHARE the share of files whose first invocation faults.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from filegate.lambdas.process_file import handler as process_file


class InjectedLambdaError(RuntimeError):
    """Raised on purpose by the chaos run."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    folder = Path(os.environ["CHAOS_LAMBDA_DIR"])
    key = str(event.get("raw_key", ""))
    digest = hashlib.sha256(key.encode()).hexdigest()
    share = float(os.environ.get("CHAOS_LAMBDA_SHARE", "0.7"))
    marker = folder / digest
    if int(digest[:8], 16) / 0xFFFFFFFF < share:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with marker.open("x") as out:  # only the first invocation for this file faults
                kind = "lambda_timeout" if int(digest[8:10], 16) % 2 else "lambda_error"
                out.write(f"{kind} {key}\n")
        except FileExistsError:
            return process_file(event, context)
        if kind == "lambda_timeout":
            time.sleep(float(os.environ.get("CHAOS_LAMBDA_TIMEOUT_S", "20")) + 10)
        raise InjectedLambdaError(f"chaos: injected Lambda error for {key}")
    return process_file(event, context)
