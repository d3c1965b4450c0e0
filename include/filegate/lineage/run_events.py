"""OpenLineage run events of one file run (spec 2-0-2 through openlineage-python's typed model).

A file run is an OpenLineage run of the job `filegate.<feed>`, child of the Airflow task run that finished it
(ParentRunFacet). Input: the raw object, with its schema, its row count and quality metrics, and the contract's
data-quality assertions with their outcome. Outputs: every Parquet key, the Postgres table, the API endpoint and
the quarantined rows, each with the schema and its row count (OutputStatistics). A `filegate` run facet carries
the file id, status and the three row counts (in, valid, rejected) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.uuid import generate_new_uuid

from filegate.contracts.model import Contract
from filegate.lineage.file_run import FileRun, Locations, contract_schema, postgres_dataset

PRODUCER = "https://github.com/filegate/filegate"  # an identifying URI of the producer, per the spec
FILEGATE_FACET_SCHEMA = "https://filegate.dev/spec/FilegateFileRunFacet.json#/$defs/FilegateFileRunFacet"
FINISHED_OK = {"processed"}


@dataclass(frozen=True)
class ParentRun:
    """The Airflow task run that finished the file, as the OpenLineage provider names it."""

    run_id: str
    job_namespace: str
    job_name: str  # "<dag_id>.<task_id>"
    root_run_id: str | None = None
    root_job_name: str | None = None  # "<dag_id>"


def job_name(feed: str) -> str:
    return f"filegate.{feed}"


def file_run_events(run: FileRun, contract: Contract, locations: Locations, *, namespace: str,
                    parent: ParentRun | None = None, run_id: str | None = None) -> list[RunEvent]:
    """START and COMPLETE (processed) or FAIL (failed, quarantined) of one finished file."""
    started = _time(run.file.get("claimed_at") or run.file.get("created_at"))
    ended = _time(run.file.get("finished_at") or run.file.get("updated_at"))
    run_uuid = run_id or str(generate_new_uuid(started))
    job = Job(namespace=namespace, name=job_name(contract.name), facets={
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="FILEGATE", jobType="FILE",
                                                producer=PRODUCER),
        "documentation": documentation_job.DocumentationJobFacet(description=contract.description,
                                                                 producer=PRODUCER),
    })
    inputs = [_raw_input(run, contract, locations)]
    outputs = _outputs(run, contract, locations)
    ok = run.file.get("status") in FINISHED_OK
    start_facets = _run_facets(run, parent)
    end_facets = dict(start_facets)
    if not ok:
        end_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=str(run.file.get("error") or run.file.get("status")), programmingLanguage="python",
            producer=PRODUCER)
    start = RunEvent(eventType=RunState.START, eventTime=started.isoformat(),
                     run=Run(runId=run_uuid, facets=start_facets), job=job, inputs=inputs, outputs=[],
                     producer=PRODUCER)
    end = RunEvent(eventType=RunState.COMPLETE if ok else RunState.FAIL, eventTime=ended.isoformat(),
                   run=Run(runId=run_uuid, facets=end_facets), job=job, inputs=inputs, outputs=outputs,
                   producer=PRODUCER)
    return [start, end]


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _run_facets(run: FileRun, parent: ParentRun | None) -> dict[str, RunFacet]:
    rows = run.rows()
    facets: dict[str, RunFacet] = {
        "filegate": FilegateFileRunFacet(fileId=run.id, feed=str(run.file.get("feed")), name=str(run.file["name"]),
                                         status=str(run.file.get("status")), sha256=run.file.get("sha256"),
                                         rowsIn=rows["in"], rowsValid=rows["valid"], rowsRejected=rows["rejected"],
                                         producer=PRODUCER),
    }
    if parent is not None:
        root = None
        if parent.root_run_id and parent.root_job_name:
            root = parent_run.Root(run=parent_run.RootRun(runId=parent.root_run_id),
                                   job=parent_run.RootJob(namespace=parent.job_namespace, name=parent.root_job_name))
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent.run_id),
            job=parent_run.Job(namespace=parent.job_namespace, name=parent.job_name), root=root, producer=PRODUCER)
    return facets


def _schema(fields: list[dict[str, Any]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=str(f["name"]), type=str(f.get("type") or "string"),
                                                description=f.get("description") or None)
        for f in fields], producer=PRODUCER)


def input_fields(run: FileRun, contract: Contract) -> list[dict[str, Any]]:
    """The raw file's columns in its own order (from the summary), else the contract's."""
    file_schema = run.summary.get("file_schema")
    if isinstance(file_schema, list) and file_schema:
        described = {c.name: c.description for c in contract.columns}
        return [{"name": f["name"], "type": f.get("type"), "description": described.get(f["name"])}
                for f in file_schema if isinstance(f, dict) and f.get("name")]
    inferred = (run.quality or {}).get("inferred_schema") or {}
    if inferred:
        return [{"name": name, "type": (spec or {}).get("type")} for name, spec in inferred.items()]
    return contract_schema(contract)


def output_fields(run: FileRun, contract: Contract) -> list[dict[str, Any]]:
    """The published columns with their Arrow types (after transforms), else the input's."""
    schema = run.summary.get("schema")
    if isinstance(schema, dict) and schema:
        return [{"name": name, "type": str(kind)} for name, kind in schema.items()]
    return input_fields(run, contract)


def assertions(run: FileRun, contract: Contract) -> list[data_quality_assertions_dataset.Assertion]:
    """Every check the contract makes, with its outcome on this file; failed checks the contract does not name
    (parser rows, file rules) are added from the file's issues."""
    failed = {(str(i.get("column")), str(i.get("rule"))): i
              for i in ((run.quality or {}).get("issues") or []) if int(i.get("count") or 0) > 0}
    checked: list[tuple[str, str]] = []
    for column in contract.columns:
        checked.append((column.name, "type"))
        if not column.nullable:
            checked.append((column.name, "required"))
        checked += [(column.name, rule) for rule, on in (("min", column.min is not None),
                    ("max", column.max is not None), ("regex", column.regex), ("enum", column.enum),
                    ("unique", column.unique)) if on]
    checked += [("*", rule.name) for rule in contract.rules]
    found = [data_quality_assertions_dataset.Assertion(assertion=rule, success=(col, rule) not in failed,
                                                        column=None if col == "*" else col)
             for col, rule in checked]
    found += [data_quality_assertions_dataset.Assertion(assertion=rule, success=False,
                                                        column=None if col == "*" else col)
              for col, rule in failed if (col, rule) not in set(checked) and rule not in {"missing", "duplicate_row"}]
    rows = run.rows()
    share = rows["rejected"] / rows["in"] if rows["in"] else 0.0
    found.append(data_quality_assertions_dataset.Assertion(
        assertion=f"rejected_share<={contract.thresholds.max_rejected_share:g}",
        success=share <= contract.thresholds.max_rejected_share))
    return found


def _raw_input(run: FileRun, contract: Contract, locations: Locations) -> InputDataset:
    rows = run.rows()
    stats = (run.quality or {}).get("column_stats") or {}
    metrics = {name: data_quality_metrics_input_dataset.ColumnMetrics(
                   nullCount=_int(s.get("nulls")), distinctCount=_int(s.get("distinct")))
               for name, s in stats.items() if isinstance(s, dict)}
    return InputDataset(
        namespace=f"s3://{locations.bucket}", name=str(run.file["raw_key"]),
        facets={"schema": _schema(input_fields(run, contract)),
                "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=assertions(run, contract), producer=PRODUCER)},
        inputFacets={"dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics=metrics, rowCount=rows["in"], bytes=_int(run.file.get("size_bytes")), fileCount=1,
            producer=PRODUCER)})


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _stats(rows: int | None, files: int | None = None) -> dict[str, Any]:
    return {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=rows, fileCount=files, producer=PRODUCER)}


def _outputs(run: FileRun, contract: Contract, locations: Locations) -> list[OutputDataset]:
    outputs = run.outputs
    rows = run.rows()
    schema = {"schema": _schema(output_fields(run, contract))}
    bucket = f"s3://{locations.bucket}"
    parquet = [str(k) for k in outputs.get("parquet") or []]
    found = [OutputDataset(namespace=bucket, name=key, facets=schema,
                           # per-key counts are not recorded; a single key holds every valid row
                           outputFacets=_stats(rows["valid"] if len(parquet) == 1 else None, 1))
             for key in parquet]
    loaded = outputs.get("postgres")
    destination = contract.destinations.postgres
    if loaded and destination is not None and locations.postgres:
        namespace, name = postgres_dataset(locations.postgres, destination)
        found.append(OutputDataset(namespace=namespace, name=name, facets=schema,
                                   outputFacets=_stats(_int(loaded.get("rows")))))
    api = contract.destinations.api
    if api is not None and locations.api_base and run.api_records:
        found.append(OutputDataset(namespace=locations.api_base.rstrip("/"), name=api.endpoint,
                                   outputFacets=_stats(run.api_records)))
    if outputs.get("quarantine_rows"):
        found.append(OutputDataset(namespace=bucket, name=str(outputs["quarantine_rows"]),
                                   outputFacets=_stats(rows["rejected"], 1)))
    return found



@attr.define
class FilegateFileRunFacet(RunFacet):
    """Filegate's own run facet: which file, its final status and its rows in, valid and rejected."""

    fileId: int  # camelCase: facet fields are the JSON names
    feed: str
    name: str
    status: str
    sha256: str | None = None
    rowsIn: int = 0
    rowsValid: int = 0
    rowsRejected: int = 0

    @staticmethod
    def _get_schema() -> str:
        return FILEGATE_FACET_SCHEMA
