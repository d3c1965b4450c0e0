"""Builds the `ingest_<kind>_<feed>` DAG of a feed picked up from a partner's server (`source.kind` ftp or sftp):
list fully written files → copy them to raw/.

The listing task hands out batches of file descriptors (plain JSON); each batch is one mapped task instance
with one server connection, so a burst of 1,000 files is a handful of task instances, while every file still gets
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
SERVER_KINDS = ("ftp", "sftp")


def dag_id_for(contract: Contract) -> str:
    return f"ingest_{contract.source.kind}_{contract.name}"


def _source_line(contract: Contract) -> str:
    if contract.source.kind == "sftp":
        assert contract.source.sftp is not None
        return (f"`{contract.source.sftp.directory}` over SFTP on the Airflow connection "
                f"`{contract.source.sftp.conn_id}` (key or password; the server's host key is verified against the "
                "connection's `host_key`, never learned)")
    ftp = contract.source.ftp
    assert ftp is not None
    return (f"`{ftp.directory}` on the Airflow connection `{ftp.conn_id}` "
            f"({'explicit FTPS' if ftp.tls else 'FTP, or FTPS if the connection says so'})")


def doc_for(contract: Contract) -> str:
    server = contract.source.remote
    assert server is not None
    after = {"archive": f"moved to `{server.archive_directory}/` on the server", "delete": "deleted on the server",
             "keep": "left on the server (remembered by path, size and time so it is not copied twice)"}
    return f"""
# {dag_id_for(contract)}

{contract.description}

**Source:** {_source_line(contract)}, names matching `{contract.source.pattern}`, every `{server.schedule}` (cron).

**Steps:** `list_ready_files` lists the directory twice, {server.stable_seconds} s apart: a file whose size or time
changed is still being written and waits for a later run. `copy_files` (one task instance per batch of up to
{BATCH_SIZE} files) streams each file to `s3://…/raw/{contract.name}/<yyyy>/<mm>/<dd>/<safe name>` (never held in
memory; the object appears only once complete and size-checked), computes its sha256, registers it
(`downloaded`, or `duplicate` for content seen before), and then the file is {after[server.after_download]}.
The raw object's S3 event starts `process_{contract.name}`.

**Failures:** dropped connections, refusals and S3 errors are retried with backoff (3 attempts per file,
then the task's own retries); a file that still fails becomes `failed` with the reason, a file that vanished
between listing and download at once. A later run that copies it takes the same row on to `queued`.
`filegate status --feed {contract.name}` shows every file and reason.
"""


def build_ingest_dag(contract: Contract) -> Any:
    server = contract.source.remote
    if contract.source.kind not in SERVER_KINDS or server is None:
        raise ValueError(f"feed {contract.name} is not picked up from a server (source.kind {contract.source.kind})")
    kind = contract.source.kind

    @dag(
        dag_id=dag_id_for(contract),
        schedule=server.schedule,
        # One run at a time: two overlapping listings would race for the same files.
        max_active_runs=1,
        **dag_kwargs(owner=contract.owner, tags=[Tag.INGESTION, kind, *contract.tags], doc_md=doc_for(contract)),
    )
    def ingest_from_server() -> None:
        @task(doc_md="Lists the server directory twice, `stable_seconds` apart, and returns the files that held "
                     "still, in batches; growing files are logged and left for a later run.")
        def list_ready_files() -> list[list[dict[str, Any]]]:
            from filegate.contracts import get_contract
            from filegate.ingestion.pickup import batches, list_ready
            from filegate.orchestration.connections import server_endpoint

            feed = get_contract(contract.name)
            session = server_endpoint(feed).session()
            session.connect()
            try:
                listing = list_ready(session, feed)
            finally:
                session.close()
            log.info("%d file(s) ready, %d still being written: %s", len(listing.ready), len(listing.growing),
                     [f.name for f in listing.growing][:50])
            return batches(listing.ready, BATCH_SIZE)

        @task(doc_md="Copies one batch of files to raw/ (streamed, size-verified, sha256), registers each, then "
                     "archives or deletes it on the server. Failed files end `failed` with the reason.")
        def copy_files(batch: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
            from filegate.contracts import get_contract
            from filegate.ingestion.pickup import pick_up, remote_file_from_dict
            from filegate.orchestration.connections import s3_client, server_endpoint, status_store
            from filegate.orchestration.notify import alert_files
            from filegate.orchestration.task_context import actor, is_last_try
            from filegate.pipeline.steps import RetryableFailure
            from filegate.settings import load_settings

            feed = get_contract(contract.name)
            store = status_store()
            report = pick_up(server_endpoint(feed), feed, [remote_file_from_dict(item) for item in batch],
                             s3=s3_client(), bucket=load_settings().bucket, store=store, actor=actor(context),
                             last_try=is_last_try(context))
            for path, reason in report.failed.items():
                log.error("pickup failed for %s: %s", path, reason)
            alert_files(store, report.failed_ids, context)
            if report.retry:
                raise RetryableFailure(f"{len(report.retry)} file(s) will be retried: "
                                       + "; ".join(f"{p}: {r}" for p, r in report.retry.items()))
            return report.as_dict()

        copy_files.expand(batch=list_ready_files())

    return ingest_from_server()
