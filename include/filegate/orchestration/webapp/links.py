"""URLs of the Airflow 3.3 UI (React router routes), so the Filegate page can link each step to its task log."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, urlsplit

# Not /ui…, /auth…, /api/v2…, /execution…, /pluginsv2…: Airflow refuses those prefixes with only a log line.
PLUGIN_PREFIX = "/filegate"


@lru_cache(maxsize=1)
def ui_base_path() -> str:
    """The path part of `[api] base_url` ('' at the root), so links work behind a sub-path too."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _seg(value: str) -> str:
    return quote(value, safe="")


def dag_run_url(dag_id: str, run_id: str) -> str:
    return f"{ui_base_path()}/dags/{_seg(dag_id)}/runs/{_seg(run_id)}"


def task_log_url(dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
    """The task instance page; its default tab is the log."""
    url = f"{dag_run_url(dag_id, run_id)}/tasks/{_seg(task_id)}"
    return url + (f"?try_number={try_number}" if try_number else "")


def login_url(next_path: str) -> str:
    return f"{ui_base_path()}/api/v2/auth/login?next={quote(next_path, safe='')}"
