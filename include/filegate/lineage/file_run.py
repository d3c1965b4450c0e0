"""One finished file run as lineage needs it: the file's row, its quality result, its summary document and the
API records acknowledged for it, read once from the status store and S3."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from filegate.contracts.model import Contract, PostgresDestination

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Locations:
    """Where the datasets live, as OpenLineage namespaces: the bucket, the Postgres server, the API's base."""

    bucket: str
    postgres: str | None = None  # "postgres://host:port/database"
    api_base: str | None = None  # "http://host:port"


@dataclass(frozen=True)
class FileRun:
    file: dict[str, Any]
    quality: dict[str, Any] | None
    summary: dict[str, Any] = field(default_factory=dict)
    api_records: int = 0

    @property
    def id(self) -> int:
        return int(self.file["id"])

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.file.get("outputs") or {})

    def rows(self) -> dict[str, int]:
        """Rows in, valid (published) and rejected; zeros when the file never got as far as validation."""
        quality = self.quality or {}
        return {"in": int(quality.get("rows_total") or 0), "valid": int(quality.get("rows_valid") or 0),
                "rejected": int(quality.get("rows_rejected") or 0)}


def load_file_runs(store: Any, s3: Any, bucket: str, file_ids: Iterable[int]) -> list[FileRun]:
    """The runs of these files (missing ids skipped). The summary document is optional: without it lineage
    falls back to the contract's declared columns."""
    runs = []
    for file_id in file_ids:
        row = store.reads.get_file(file_id)
        if row is None:
            continue
        calls = store.reads.api_calls(file_id)
        runs.append(FileRun(file=row, quality=store.reads.quality(file_id), summary=_summary(s3, bucket, row),
                            api_records=sum(int(c.get("records") or 0) for c in calls if c.get("acknowledged"))))
    return runs


def _summary(s3: Any, bucket: str, row: dict[str, Any]) -> dict[str, Any]:
    key = (row.get("outputs") or {}).get("summary")
    if not key or s3 is None:
        return {}
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:  # lineage is best effort: a missing summary costs only the schema details
        log.warning("file %s: summary %s unreadable for lineage (%s)", row.get("id"), key, exc)
        return {}
    return document if isinstance(document, dict) else {}


def postgres_location(dsn: str) -> str:
    """`postgres://host:port/database` of a libpq DSN (URL or key=value), without credentials. A Unix-socket
    DSN has no network host: it is named localhost, as Airflow's postgres asset URIs need a host."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost")
    if host.startswith("/") or "," in host:
        host = "localhost"
    port = str(params.get("port") or "5432").split(",")[0]
    database = str(params.get("dbname") or params.get("user") or "postgres")
    return f"postgres://{host}:{port}/{database}"


def postgres_dataset(location: str, destination: PostgresDestination) -> tuple[str, str]:
    """(namespace, name) of a table as the OpenLineage Postgres naming (and Airflow's converter) spell it."""
    parts = urlsplit(location)
    return f"postgres://{parts.netloc}", f"{parts.path.strip('/')}.{destination.db_schema}.{destination.table}"


def contract_schema(contract: Contract) -> list[dict[str, str]]:
    return [{"name": c.name, "type": c.type, "description": c.description} for c in contract.columns]
