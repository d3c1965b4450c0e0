"""Runtime settings read from the environment, with local-stack defaults.

Airflow tasks get connections from Airflow; the CLI, tests and Lambda handlers read these variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FEEDS_DIR = Path(__file__).resolve().parents[1] / "feeds"


@dataclass(frozen=True)
class Settings:
    bucket: str
    db_url: str | None
    api_url: str | None
    feeds_dir: Path
    sqs_queue_base_url: str | None
    alert_topic_arn: str | None
    home: Path


def filegate_home() -> Path:
    return Path(os.environ.get("FILEGATE_HOME") or PROJECT_ROOT / ".filegate")


def _stack_env_value(name: str) -> str | None:
    """Falls back to the local stack's env file so `filegate status` works right after `make run`."""
    env_file = filegate_home() / "stack.env"
    if not env_file.is_file():
        return None
    prefix = f"export {name}="
    for line in env_file.read_text().splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip().strip("'\"")
    return None


def _get(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or _stack_env_value(name) or default


def load_settings() -> Settings:
    return Settings(
        bucket=_get("FILEGATE_BUCKET", "filegate-local") or "filegate-local",
        db_url=_get("FILEGATE_DB_URL"),
        api_url=_get("FILEGATE_API_URL"),
        feeds_dir=Path(_get("FILEGATE_FEEDS_DIR") or DEFAULT_FEEDS_DIR),
        sqs_queue_base_url=_get("FILEGATE_SQS_QUEUE_BASE_URL"),
        alert_topic_arn=_get("FILEGATE_ALERT_TOPIC_ARN"),
        home=filegate_home(),
    )


DEFAULT_FILE_WORKERS = 4


def file_workers() -> int:
    """How many files a step handles at once (FILEGATE_FILE_WORKERS, default 4)."""
    return max(int(os.environ.get("FILEGATE_FILE_WORKERS") or DEFAULT_FILE_WORKERS), 1)
