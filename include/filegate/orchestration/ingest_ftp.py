"""Builds the `ingest_ftp_<feed>` DAG of an FTP feed contract: list fully written files → copy them to raw/.

The listing task hands out batches of file descriptors (plain JSON); each batch is one mapped task instance
with one FTP connection, so a burst of 1,000 files is a handful of task instances, while every file still gets
its own status row and history. The copied raw object then triggers `process_<feed>` through S3 → SQS.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import dag, task

from filegate.contracts.model import Contract
from filegate.orchestration.policy import Tag, dag_kwargs

log = logging.getLogger(__name__)
BATCH_SIZE = int(os.environ.get("FILEGATE_FTP_BATCH_SIZE", "200"))
FALSE = {"false", "0", "no", "off"}


def ftp_endpoint(conn_id: str, tls: bool) -> Any:
    """An FtpEndpoint from the Airflow connection `conn_id` (conn type ftp or ftps).

    TLS is on when the contract says `tls: true`, the connection type is `ftps` or its extra has `"tls": true`.
    Extras: `passive` (default true), `ca_file` (else FILEGATE_FTP_CA_FILE, else the system CAs), `timeout`."""
    from airflow.sdk import BaseHook

    from filegate.ingestion.ftp import FtpEndpoint

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    if not conn.host:
        raise RuntimeError(f"FTP connection {conn_id!r} has no host")
    return FtpEndpoint(
        host=conn.host, port=int(conn.port or 21), user=conn.login or "anonymous", password=conn.password or "",
        tls=tls or conn.conn_type == "ftps" or str(extra.get("tls", "")).lower() in {"true", "1", "yes"},
        ca_file=extra.get("ca_file") or os.environ.get("FILEGATE_FTP_CA_FILE") or None,
        passive=str(extra.get("passive", "true")).lower() not in FALSE,
        timeout_s=float(extra.get("timeout", 60)),
    )


def doc_for(contract: Contract) -> str:
    ftp = contract.source.ftp
    assert ftp is not None
    after = {"archive": f"moved to `{ftp.archive_directory}/` on the server", "delete": "deleted on the server",
             "keep": "left on the server (remembered by path, size and time so it is not copied twice)"}
    return f"""
# ingest_ftp_{contract.name}

{contract.description}

**Source:** `{ftp.directory}` on the Airflow connection `{ftp.conn_id}` ({'explicit FTPS' if ftp.tls else
'FTP, or FTPS if the connection says so'}), names matching `{contract.source.pattern}`, every
`{ftp.schedule}` (cron).

**Steps:** `list_ready_files` lists the directory twice, {ftp.stable_seconds} s apart: a file whose size or time
changed is still being written and waits for a later run. `copy_files` (one task instance per batch of up to
{BATCH_SIZE} files) streams each file to `s3://…/raw/{contract.name}/<yyyy>/<mm>/<dd>/<safe name>` (never held in
memory; the object appears only once complete and size-checked), computes its sha256, registers it
(`downloaded`, or `duplicate` for content seen before), and then the file is {after[ftp.after_download]}.
The raw object's S3 event starts `process_{contract.name}`.

**Failures:** dropped connections, 4xx/5xx replies and S3 errors are retried with backoff (3 attempts per file,
then the task's own retries); a file that still fails becomes `failed` with the reason, a file that vanished
between listing and download at once. A later run that copies it takes the same row on to `queued`.
`filegate status --feed {contract.name}` shows every file and reason.
"""


def build_ingest_ftp_dag(contract: Contract) -> Any:
    ftp = contract.source.ftp
    if contract.source.kind != "ftp" or ftp is None:
        raise ValueError(f"feed {contract.name} is not an FTP feed")

    @dag(
        dag_id=f"ingest_ftp_{contract.name}",
        schedule=ftp.schedule,
        # One run at a time: two overlapping listings would race for the same files.
        max_active_runs=1,
        **dag_kwargs(owner=contract.owner, tags=[Tag.INGESTION, "ftp", *contract.tags], doc_md=doc_for(contract)),
    )
    def ingest_ftp() -> None:
        @task(doc_md="Lists the FTP directory twice, `stable_seconds` apart, and returns the files that held still,"
                     " in batches; growing files are logged and left for a later run.")
        def list_ready_files() -> list[list[dict[str, Any]]]:
            from filegate.contracts import get_contract
            from filegate.ingestion.ftp import FtpSession
            from filegate.ingestion.pickup import batches, list_ready

            feed = get_contract(contract.name)
            assert feed.source.ftp is not None
            with FtpSession(ftp_endpoint(feed.source.ftp.conn_id, feed.source.ftp.tls)) as session:
                listing = list_ready(session, feed)
            log.info("%d file(s) ready, %d still being written: %s", len(listing.ready), len(listing.growing),
                     [f.name for f in listing.growing][:50])
            return batches(listing.ready, BATCH_SIZE)

        @task(doc_md="Copies one batch of files to raw/ (streamed, size-verified, sha256), registers each, then "
                     "archives or deletes it on the server. Failed files end `failed` with the reason.")
        def copy_files(batch: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
            from filegate.contracts import get_contract
            from filegate.ingestion.pickup import pick_up, remote_file_from_dict
            from filegate.orchestration.connections import s3_client, status_store
            from filegate.orchestration.notify import alert_files
            from filegate.orchestration.task_context import actor, is_last_try
            from filegate.pipeline.steps import RetryableFailure
            from filegate.settings import load_settings

            feed = get_contract(contract.name)
            assert feed.source.ftp is not None
            store = status_store()
            report = pick_up(ftp_endpoint(feed.source.ftp.conn_id, feed.source.ftp.tls), feed,
                             [remote_file_from_dict(item) for item in batch], s3=s3_client(),
                             bucket=load_settings().bucket, store=store, actor=actor(context),
                             last_try=is_last_try(context))
            for path, reason in report.failed.items():
                log.error("pickup failed for %s: %s", path, reason)
            alert_files(store, report.failed_ids, context)
            if report.retry:
                raise RetryableFailure(f"{len(report.retry)} file(s) will be retried: "
                                       + "; ".join(f"{p}: {r}" for p, r in report.retry.items()))
            return report.as_dict()

        copy_files.expand(batch=list_ready_files())

    return ingest_ftp()
