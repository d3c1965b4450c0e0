"""Validates OpenLineage events against JSON Schemas of the OpenLineage spec (core 2-0-2 and the facets Filegate
emits), for the unit and integration tests.

Neither openlineage-python (wheel 1.52.0, sdist 1.39.0) nor any other PyPI package ships the spec's JSON Schema
files, and this project copies nothing from GitHub. So by default events are checked against SPEC below: the
spec's rules written out here (required fields, types, enums, formats, the facet versions openlineage-python
1.52 emits). With FILEGATE_OPENLINEAGE_SPEC_DIR pointing at a checkout of the spec folder (OpenLineage.json and
facets/*.json), events are validated against those official files as well: each facet against the schema its
_schemaURL names.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

FORMATS = FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    from datetime import datetime

    return not isinstance(value, str) or bool(datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo)


def _facet(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    return {"allOf": [{"$ref": "#/$defs/BaseFacet"},
                      {"type": "object", "properties": properties or {}, "required": required or []}]}


_JOB_REF = {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
            "required": ["namespace", "name"]}
_RUN_REF = {"type": "object", "properties": {"runId": {"type": "string", "format": "uuid"}}, "required": ["runId"]}
_COUNT = {"type": "integer", "minimum": 0}

SPEC: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$ref": "#/$defs/RunEvent",
    "$defs": {
        "RunEvent": {
            "type": "object",
            "properties": {
                "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
                "eventTime": {"type": "string", "format": "date-time"},
                "producer": {"type": "string", "format": "uri"},
                "schemaURL": {"type": "string", "format": "uri"},
                "run": {"type": "object", "properties": {
                    "runId": {"type": "string", "format": "uuid"},
                    "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                               "properties": {"parent": {"$ref": "#/$defs/ParentRunFacet"},
                                              "errorMessage": {"$ref": "#/$defs/ErrorMessageRunFacet"}}}},
                    "required": ["runId"]},
                "job": {"type": "object", "properties": {
                    "namespace": {"type": "string"}, "name": {"type": "string"},
                    "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                               "properties": {"jobType": {"$ref": "#/$defs/JobTypeJobFacet"}}}},
                    "required": ["namespace", "name"]},
                "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
            },
            "required": ["run", "job", "eventTime", "producer", "schemaURL"],
        },
        "BaseFacet": {"type": "object", "properties": {
            "_producer": {"type": "string", "format": "uri"}, "_schemaURL": {"type": "string", "format": "uri"}},
            "required": ["_producer", "_schemaURL"]},
        "Dataset": {"type": "object", "properties": {
            "namespace": {"type": "string"}, "name": {"type": "string"},
            "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                       "properties": {"schema": {"$ref": "#/$defs/SchemaDatasetFacet"},
                                      "dataQualityAssertions": {"$ref": "#/$defs/DataQualityAssertionsDatasetFacet"}}}},
            "required": ["namespace", "name"]},
        "InputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {"type": "object", "properties": {"inputFacets": {
            "type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
            "properties": {"dataQualityMetrics": {"$ref": "#/$defs/DataQualityMetricsInputDatasetFacet"}}}}}]},
        "OutputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {"type": "object", "properties": {"outputFacets": {
            "type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
            "properties": {"outputStatistics": {"$ref": "#/$defs/OutputStatisticsOutputDatasetFacet"}}}}}]},
        "ParentRunFacet": _facet({"run": _RUN_REF, "job": _JOB_REF, "root": {"type": "object", "properties": {
            "run": _RUN_REF, "job": _JOB_REF}, "required": ["run", "job"]}}, ["run", "job"]),
        "ErrorMessageRunFacet": _facet({"message": {"type": "string"}, "programmingLanguage": {"type": "string"},
                                        "stackTrace": {"type": "string"}}, ["message", "programmingLanguage"]),
        "JobTypeJobFacet": _facet({"processingType": {"type": "string"}, "integration": {"type": "string"},
                                   "jobType": {"type": "string"}}, ["processingType", "integration"]),
        "SchemaDatasetFacet": _facet({"fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}}),
        "SchemaField": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"},
            "fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}}, "required": ["name"]},
        "DataQualityAssertionsDatasetFacet": _facet({"assertions": {"type": "array", "items": {
            "type": "object", "properties": {"assertion": {"type": "string"}, "success": {"type": "boolean"},
                                             "column": {"type": "string"}},
            "required": ["assertion", "success"]}}}, ["assertions"]),
        "DataQualityMetricsInputDatasetFacet": _facet({
            "rowCount": _COUNT, "bytes": _COUNT, "fileCount": _COUNT,
            "columnMetrics": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "nullCount": _COUNT, "distinctCount": _COUNT, "sum": {"type": "number"},
                "count": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"}}}}},
            ["columnMetrics"]),
        "OutputStatisticsOutputDatasetFacet": _facet({"rowCount": _COUNT, "size": _COUNT, "fileCount": _COUNT}),
    },
}

# The facet schema versions openlineage-python 1.52 writes in _schemaURL; a client upgrade that changes one
# shows up here, so the rules above get re-checked against that version of the spec.
FACET_VERSIONS = {
    "ParentRunFacet": "1-2-0", "ErrorMessageRunFacet": "1-0-1", "JobTypeJobFacet": "2-0-4",
    "SchemaDatasetFacet": "1-2-0", "DataQualityAssertionsDatasetFacet": "1-1-0",
    "DataQualityMetricsInputDatasetFacet": "1-0-3", "OutputStatisticsOutputDatasetFacet": "1-0-2",
}
_SCHEMA_URL = re.compile(r"^https://openlineage\.io/spec/facets/(?P<version>[\d-]+)/(?P<file>\w+)\.json#/\$defs/(?P<name>\w+)$")

_VALIDATOR = Draft202012Validator(SPEC, format_checker=FORMATS)


def problems(event: dict[str, Any]) -> list[str]:
    """Everything wrong with one event; empty when it is valid."""
    found = [f"{'/'.join(map(str, e.absolute_path)) or '<event>'}: {e.message}"
             for e in _VALIDATOR.iter_errors(event)]
    if not str(event.get("schemaURL", "")).startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json"):
        found.append(f"schemaURL {event.get('schemaURL')!r} is not the 2-0-2 core spec")
    for where, facet in _facets(event):
        match = _SCHEMA_URL.match(str(facet.get("_schemaURL", "")))
        if match and match["name"] in FACET_VERSIONS and match["version"] != FACET_VERSIONS[match["name"]]:
            found.append(f"{where}: {match['name']} version {match['version']}, rules here are for "
                         f"{FACET_VERSIONS[match['name']]}")
    found += _official_problems(event)
    return found


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key in ("run", "job"):
        for name, facet in ((event.get(key) or {}).get("facets") or {}).items():
            found.append((f"{key}.facets.{name}", facet))
    for side in ("inputs", "outputs"):
        for index, dataset in enumerate(event.get(side) or []):
            for group in ("facets", "inputFacets", "outputFacets"):
                for name, facet in (dataset.get(group) or {}).items():
                    found.append((f"{side}[{index}].{group}.{name}", facet))
    return found


def _official_problems(event: dict[str, Any]) -> list[str]:
    """Validation against the spec's own files, when FILEGATE_OPENLINEAGE_SPEC_DIR names a copy of them."""
    spec_dir = os.environ.get("FILEGATE_OPENLINEAGE_SPEC_DIR")
    if not spec_dir:
        return []
    from referencing import Registry, Resource

    root = Path(spec_dir)
    resources = []
    for path in [root / "OpenLineage.json", *sorted((root / "facets").glob("*.json"))]:
        document = json.loads(path.read_text())
        resources.append((document["$id"], Resource.from_contents(document)))
    registry = Registry().with_resources(resources)
    core = json.loads((root / "OpenLineage.json").read_text())
    found = [f"official core: {e.message}" for e in
             Draft202012Validator(core, registry=registry, format_checker=FORMATS).iter_errors(event)]
    for where, facet in _facets(event):
        url = str(facet.get("_schemaURL", ""))
        if not url.startswith("https://openlineage.io/spec/facets/"):
            continue
        base, _, pointer = url.partition("#")
        try:
            schema = {"$ref": url}
            found += [f"official {where}: {e.message}" for e in Draft202012Validator(
                schema, registry=registry, format_checker=FORMATS).iter_errors(facet)]
        except Exception as exc:  # a facet version the copy does not have
            found.append(f"official {where}: {base} not in {spec_dir} ({exc}; pointer {pointer})")
    return found
