"""Runtime settings read from the environment.

Airflow tasks get connections from Airflow; the CLI, tests and Lambda handlers read these variables. Nothing
here knows the local stack: the `filegate` command itself falls back to the stack's env file (filegate.cli).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FEEDS_DIR = Path(__file__).resolve().parents[1] / "feeds"


@dataclass(frozen=True)
class Settings:
    bucket: str
    db_url: str | None
    api_url: str | None
    feeds_dir: Path
    sqs_queue_base_url: str | None
    alert_topic_arn: str | None


def _get(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def load_settings() -> Settings:
    return Settings(
        bucket=_get("FILEGATE_BUCKET", "filegate-local") or "filegate-local",
        db_url=_get("FILEGATE_DB_URL"),
        api_url=_get("FILEGATE_API_URL"),
        feeds_dir=Path(_get("FILEGATE_FEEDS_DIR") or DEFAULT_FEEDS_DIR),
        sqs_queue_base_url=_get("FILEGATE_SQS_QUEUE_BASE_URL"),
        alert_topic_arn=_get("FILEGATE_ALERT_TOPIC_ARN"),
    )


DEFAULT_FILE_WORKERS = 4


def file_workers() -> int:
    """How many files a step handles at once (FILEGATE_FILE_WORKERS, default 4)."""
    return max(int(os.environ.get("FILEGATE_FILE_WORKERS") or DEFAULT_FILE_WORKERS), 1)


def positive_seconds(name: str, default: float) -> float:
    """A duration setting in seconds from the environment variable `name` (`default` when unset); anything but a
    number above 0 is refused with the variable named."""
    value = os.environ.get(name)
    try:
        seconds = float(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise ValueError(f"{name}={value!r} must be more than 0 seconds")
    return seconds
