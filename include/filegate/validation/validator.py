"""Validates text batches against a feed contract: casts each column, applies the row rules, and splits the
batch into typed valid rows and rejected rows that carry their original text and every reason."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column, Contract
from filegate.validation.casts import arrow_type, cast_column

ROW_COLUMN = "_row"
REASONS_COLUMN = "_reasons"
SAMPLE_ROWS = 5


class FileRejected(ValueError):
    """The whole file breaks the contract (its header, or more bad rows than the feed allows)."""


@dataclass
class Issue:
    column: str
    rule: str
    count: int = 0
    sample_rows: list[int] = field(default_factory=list)


@dataclass
class BatchResult:
    valid: pa.Table
    rejected: pa.Table


def _show(value: object) -> str:
    text = str(value)
    return repr(text[:60] + "…") if len(text) > 60 else repr(text)


def check_header(contract: Contract, header: list[str]) -> None:
    names = [c.name for c in contract.columns]
    if not names:
        return
    missing = [name for name in names if name not in header]
    if missing:
        raise FileRejected(
            f"missing column(s) {', '.join(missing)}; the file has: {', '.join(header[:30])}"
            + (" …" if len(header) > 30 else "")
        )
    extra = [name for name in header if name not in names]
    if extra and not contract.schema_.allow_extra_columns:
        shown = ", ".join(extra[:10]) + (" …" if len(extra) > 10 else "")
        raise FileRejected(f"unexpected column(s) {shown}; the feed allows only: {', '.join(names)}")


class Validator:
    def __init__(self, contract: Contract, header: list[str]) -> None:
        check_header(contract, header)
        self.contract = contract
        self.header = header
        self.columns = contract.columns
        self.extra = [name for name in header if name not in {c.name for c in self.columns}]
        self._seen: dict[str, set[object]] = {c.name: set() for c in self.columns if c.unique}
        self.issues: dict[tuple[str, str], Issue] = {}
        self.rows_total = 0
        self.rows_rejected = 0

    @property
    def output_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in self.columns]
        fields += [pa.field(name, pa.string()) for name in self.extra]
        return pa.schema(fields)

    def _record(self, column: str, rule: str, mask: pa.Array, first_row: int) -> pa.Array:
        count = pc.sum(mask).as_py() or 0
        if count:
            issue = self.issues.setdefault((column, rule), Issue(column, rule))
            issue.count += count
            if len(issue.sample_rows) < SAMPLE_ROWS:
                idx = pc.indices_nonzero(mask).to_pylist()[: SAMPLE_ROWS - len(issue.sample_rows)]
                issue.sample_rows.extend(first_row + i for i in idx)
        return mask

    def _unique_mask(self, column: Column, values: pa.Array) -> pa.Array:
        seen = self._seen[column.name]
        flags = []
        for value in values.to_pylist():
            if value is None:
                flags.append(False)
            elif value in seen:
                flags.append(True)
            else:
                seen.add(value)
                flags.append(False)
        return pa.array(flags, pa.bool_())

    def validate(self, batch: pa.RecordBatch, first_row: int) -> BatchResult:
        n = batch.num_rows
        self.rows_total += n
        typed_columns: list[pa.Array] = []
        failures: list[tuple[pa.Array, Callable[[int], str]]] = []

        def fail(column: Column, rule: str, mask: pa.Array, message: Callable[[int], str]) -> None:
            mask = pc.fill_null(mask, False)
            if pc.any(mask).as_py():
                failures.append((self._record(column.name, rule, mask, first_row), message))

        for column in self.columns:
            text = batch.column(column.name)
            typed, invalid = cast_column(text, column)
            typed_columns.append(typed)
            fail(column, "type", invalid,
                 lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} is not a valid {c.type}")
            is_null = pc.and_(pc.is_null(typed), pc.invert(invalid))
            if not column.nullable:
                fail(column, "required", is_null, lambda i, c=column: f"{c.name}: is required but empty")
            if column.min is not None:
                fail(column, "min", pc.less(typed, pa.scalar(column.min).cast(_compare_type(typed))),
                     lambda i, c=column, v=typed: f"{c.name}: {v[i].as_py()} is below the minimum {c.min:g}")
            if column.max is not None:
                fail(column, "max", pc.greater(typed, pa.scalar(column.max).cast(_compare_type(typed))),
                     lambda i, c=column, v=typed: f"{c.name}: {v[i].as_py()} is above the maximum {c.max:g}")
            if column.regex is not None:
                matches = pc.match_substring_regex(typed.cast(pa.string()), column.regex)
                fail(column, "regex", pc.invert(matches),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} does not match {c.regex}")
            if column.enum is not None:
                allowed = pc.is_in(typed.cast(pa.string()), value_set=pa.array(column.enum))
                fail(column, "enum", pc.and_(pc.is_valid(typed), pc.invert(allowed)),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} is not one of "
                     + ", ".join(c.enum or []))
            if column.unique:
                fail(column, "unique", self._unique_mask(column, typed),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} appears more than once")

        typed_columns += [batch.column(name) for name in self.extra]
        typed_batch = pa.Table.from_arrays(typed_columns, schema=_nullable(self.output_schema))
        if not failures:
            return BatchResult(typed_batch, _empty_rejects(self.header))

        any_failure = failures[0][0]
        for mask, _ in failures[1:]:
            any_failure = pc.or_(any_failure, mask)
        reasons: dict[int, list[str]] = defaultdict(list)
        for mask, message in failures:
            for i in pc.indices_nonzero(mask).to_pylist():
                reasons[i].append(message(i))
        rejected_idx = sorted(reasons)
        self.rows_rejected += len(rejected_idx)
        text_table = pa.Table.from_batches([batch]).take(pa.array(rejected_idx, pa.int64()))
        rejected = text_table.add_column(0, ROW_COLUMN, pa.array([first_row + i for i in rejected_idx], pa.int64()))
        rejected = rejected.append_column(REASONS_COLUMN, pa.array(["; ".join(reasons[i]) for i in rejected_idx]))
        return BatchResult(typed_batch.filter(pc.invert(any_failure)), rejected)

    def issue_summary(self) -> list[dict[str, object]]:
        total = max(self.rows_total, 1)
        ordered = sorted(self.issues.values(), key=lambda issue: -issue.count)
        return [
            {"column": i.column, "rule": i.rule, "count": i.count,
             "percent": round(100.0 * i.count / total, 3), "sample_rows": i.sample_rows}
            for i in ordered
        ]


def _compare_type(values: pa.Array) -> pa.DataType:
    return values.type if pa.types.is_decimal(values.type) or pa.types.is_floating(values.type) else pa.float64()


def _nullable(schema: pa.Schema) -> pa.Schema:
    # Nullability is enforced by the rules above; the batch schema must still accept the nulls of rejected rows.
    return pa.schema([f.with_nullable(True) for f in schema])


def _empty_rejects(header: list[str]) -> pa.Table:
    fields = [pa.field(ROW_COLUMN, pa.int64())] + [pa.field(h, pa.string()) for h in header]
    fields.append(pa.field(REASONS_COLUMN, pa.string()))
    return pa.schema(fields).empty_table()


def rejects_from_bad_rows(header: list[str], bad_rows: list[tuple[int | None, str, str]]) -> pa.Table:
    """Rows the parser could not split into the header's fields, kept whole in the first column."""
    columns: dict[str, list[object]] = {ROW_COLUMN: [], **{h: [] for h in header}, REASONS_COLUMN: []}
    for line, reason, text in bad_rows:
        columns[ROW_COLUMN].append(line)
        for i, name in enumerate(header):
            columns[name].append(text if i == 0 else "")
        columns[REASONS_COLUMN].append(f"line {line}: {reason}" if line else reason)
    return pa.table(columns, schema=_empty_rejects(header).schema)
