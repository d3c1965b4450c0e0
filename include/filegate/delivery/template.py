"""Payload templates: how a feed contract maps one processed row to the JSON object the target API expects.

A template is a mapping from JSON field to a value spec:

- a string names a column: ``id: order_id`` (the flat ``payload: {field: column}`` form stays valid);
- a mapping is a nested object, built field by field: ``customer: {email: email, name: customer_name}``;
- ``{$column: name}`` names a column explicitly (for a column whose name starts with ``$``);
- ``{$const: value}`` is a constant of any JSON type: ``source: {$const: filegate}``;
- ``{$meta: feed | file_id | file_name | sha256}`` is a fact about the file being delivered.

An empty template sends every column under its own name. Templates are compiled once into plain functions, so
rendering costs about what a hand-written dict comprehension costs.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

META_FIELDS = ("feed", "file_id", "file_name", "sha256")
DIRECTIVES = ("$column", "$const", "$meta")

Row = Mapping[str, Any]
Render = Callable[[Row, Mapping[str, Any]], Any]


class TemplateError(ValueError):
    """A payload template that cannot be compiled; the message names the field path."""


def to_json_value(value: Any) -> Any:
    """Decimals travel as strings (no float rounding), dates and times as ISO 8601."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _column(name: str) -> Render:
    def render(row: Row, _meta: Mapping[str, Any]) -> Any:
        return to_json_value(row[name])

    return render


def _compile(spec: Any, path: str, columns: list[str]) -> Render:
    if isinstance(spec, str):
        if not spec:
            raise TemplateError(f"{path}: a column name cannot be empty")
        columns.append(spec)
        return _column(spec)
    if isinstance(spec, Mapping):
        directives = [k for k in spec if isinstance(k, str) and k.startswith("$")]
        if directives:
            if len(spec) != 1 or directives[0] not in DIRECTIVES:
                raise TemplateError(f"{path}: expected exactly one of {', '.join(DIRECTIVES)}, got {sorted(spec)}")
            kind, value = directives[0], spec[directives[0]]
            if kind == "$const":
                return lambda _row, _meta: value
            if kind == "$meta":
                if value not in META_FIELDS:
                    raise TemplateError(f"{path}: $meta must be one of {', '.join(META_FIELDS)}, got {value!r}")
                return lambda _row, meta: meta.get(value)
            if not isinstance(value, str) or not value:
                raise TemplateError(f"{path}: $column needs a column name, got {value!r}")
            columns.append(value)
            return _column(value)
        fields = []
        for key, child in spec.items():
            if not isinstance(key, str) or not key:
                raise TemplateError(f"{path}: field names must be non-empty strings, got {key!r}")
            fields.append((key, _compile(child, f"{path}.{key}", columns)))

        def render_object(row: Row, meta: Mapping[str, Any]) -> dict[str, Any]:
            return {key: render(row, meta) for key, render in fields}

        return render_object
    raise TemplateError(f"{path}: expected a column name, a nested mapping or a $const/$column/$meta, "
                        f"got {type(spec).__name__} {spec!r}")


@dataclass(frozen=True)
class PayloadTemplate:
    """A compiled template; `columns` are the processed-output columns it reads (empty: all of them)."""

    spec: Mapping[str, Any]
    columns: tuple[str, ...]
    _render: Render | None

    @classmethod
    def compile(cls, spec: Mapping[str, Any] | None, *, path: str = "payload") -> PayloadTemplate:
        spec = dict(spec or {})
        if not spec:
            return cls(spec, (), None)
        columns: list[str] = []
        flat = all(isinstance(v, str) for v in spec.values())
        render = _compile(spec, path, columns)
        if flat:
            # The common case, field -> column, as one comprehension: no closure call per field.
            pairs = tuple(spec.items())

            def render_flat(row: Row, _meta: Mapping[str, Any]) -> dict[str, Any]:
                return {field: to_json_value(row[column]) for field, column in pairs}

            render = render_flat
        return cls(spec, tuple(dict.fromkeys(columns)), render)

    def missing_columns(self, available: list[str]) -> list[str]:
        have = set(available)
        return [c for c in self.columns if c not in have]

    def bind(self, meta: Mapping[str, Any] | None = None) -> Callable[[Row], dict[str, Any]]:
        """A function rendering one row, with the file's facts (for $meta) bound."""
        facts = dict(meta or {})
        render = self._render
        if render is None:
            return lambda row: {key: to_json_value(value) for key, value in row.items()}
        return lambda row: render(row, facts)


def validate_template(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """For the contract model: raises ValueError naming the field path of a bad template."""
    PayloadTemplate.compile(spec)
    return spec
