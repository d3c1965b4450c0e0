"""Validates text batches against a feed contract: casts each column, applies the column rules and the row rules
(cross-column checks), and splits the batch into typed valid rows and rejected rows that carry their original
text and every reason. Everything per batch is pyarrow/numpy; Python only touches the rejected rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column, Contract, RowRule
from filegate.expressions import ExpressionError, columns_used, evaluate
from filegate.profiling.sketch import KeySet, hash_values
from filegate.validation.casts import Markers, arrow_type, cast_marked, markers_for, may_contain

ROW_COLUMN = "_row"
REASONS_COLUMN = "_reasons"
SAMPLE_ROWS = 5
NUL = "\x00"


class FileRejected(ValueError):
    """The whole file breaks the contract (its header, a file rule, or more bad rows than the feed allows)."""


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
    valid_rows: np.ndarray  # 1-based row numbers of the valid rows in the file
    markers: dict[str, int] = field(default_factory=dict)  # per column: valid rows whose cell was a null marker


@dataclass
class SortState:
    columns: list[str]
    last: tuple[Any, ...] | None = None
    last_row: int = 0
    violations: int = 0
    first_violation: str | None = None


def _show(value: object) -> str:
    text = str(value)
    return repr(text[:60] + "…") if len(text) > 60 else repr(text)


def check_header(contract: Contract, header: list[str], columns: list[Column] | None = None) -> None:
    names = [c.name for c in (contract.columns if columns is None else columns)]
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
    """`columns` overrides the contract's (an inferred schema); the contract's rules apply either way. A column's
    missing-value markers (`Contract.null_markers`) make its cells null, counted per column in `markers`."""

    def __init__(self, contract: Contract, header: list[str], columns: list[Column] | None = None) -> None:
        self.columns = list(contract.columns if columns is None else columns)
        check_header(contract, header, self.columns)
        self.contract = contract
        self.header = header
        names = {c.name for c in self.columns}
        self.extra = [name for name in header if name not in names]
        inferred = columns is not None
        self.markers: dict[str, Markers | None] = {
            c.name: markers_for(c, contract.null_markers(c, inferred=inferred)) for c in self.columns}
        self._seen: dict[str, KeySet] = {c.name: KeySet() for c in self.columns if c.unique}
        self.rules: list[RowRule] = list(contract.rules)
        self._rule_columns: dict[str, list[str]] = {}  # each rule's columns, parsed once (not once per batch)
        for rule in self.rules:
            used = columns_used(rule.check)
            self._rule_columns[rule.check] = sorted(used)
            unknown = sorted(used - names - set(self.extra))
            if unknown:
                raise FileRejected(f"rule {rule.name} names column(s) the file lacks: {', '.join(unknown)}")
        sort_columns = list(contract.file_rules.sorted_by)
        self.sort = SortState(sort_columns) if sort_columns else None
        self.issues: dict[tuple[str, str], Issue] = {}
        self.rows_total = 0
        self.rows_rejected = 0

    @property
    def output_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in self.columns]
        fields += [pa.field(name, pa.string()) for name in self.extra]
        return pa.schema(fields)

    def _record(self, column: str, rule: str, mask: pa.Array, first_row: int) -> pa.Array:
        count = mask.true_count
        if count:
            issue = self.issues.setdefault((column, rule), Issue(column, rule))
            issue.count += count
            if len(issue.sample_rows) < SAMPLE_ROWS:
                idx = pc.indices_nonzero(mask)[: SAMPLE_ROWS - len(issue.sample_rows)].to_pylist()
                issue.sample_rows.extend(first_row + i for i in idx)
        return mask

    def _unique_mask(self, column: Column, values: pa.Array) -> pa.Array:
        hashes, valid = hash_values(values, exact_ints=True)
        repeated = np.zeros(len(values), dtype=bool)
        repeated[valid] = self._seen[column.name].seen_before(hashes[valid])
        return pa.array(repeated, pa.bool_())

    def validate(self, batch: pa.RecordBatch, first_row: int) -> BatchResult:
        n = batch.num_rows
        self.rows_total += n
        typed_columns: list[pa.Array] = []
        marked_columns: dict[str, pa.Array] = {}
        failures: list[tuple[pa.Array, Callable[[int], str]]] = []

        def fail(column: str, rule: str, mask: pa.Array, message: Callable[[int], str]) -> None:
            if isinstance(mask, pa.ChunkedArray):
                mask = mask.combine_chunks()
            if mask.null_count:
                mask = pc.fill_null(mask, False)
            if mask.true_count:  # a popcount: most masks are all false, and this is their whole cost
                failures.append((self._record(column, rule, mask, first_row), message))

        for name in self.header:
            text = batch.column(name)
            if may_contain(text, b"\x00") and pc.any(pc.match_substring(text, NUL)).as_py():
                fail(name, "nul", pc.match_substring(text, NUL),
                     lambda i, c=name: f"{c}: holds a NUL byte (\\x00): binary or corrupted data")

        for column in self.columns:
            text = batch.column(column.name)
            typed, invalid, marked = cast_marked(text, column, self.markers[column.name])
            typed_columns.append(typed)
            if marked is not None:
                marked_columns[column.name] = marked
            fail(column.name, "type", invalid,
                 lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} is not a valid {c.type}")
            if not column.nullable and typed.null_count:
                is_null = pc.and_(pc.is_null(typed), pc.invert(invalid))
                fail(column.name, "required", is_null, lambda i, c=column, t=text: _required(c, t[i].as_py()))
            if column.min is not None:
                fail(column.name, "min", pc.less(typed, pa.scalar(column.min).cast(_compare_type(typed))),
                     lambda i, c=column, v=typed: f"{c.name}: {v[i].as_py()} is below the minimum {c.min:g}")
            if column.max is not None:
                fail(column.name, "max", pc.greater(typed, pa.scalar(column.max).cast(_compare_type(typed))),
                     lambda i, c=column, v=typed: f"{c.name}: {v[i].as_py()} is above the maximum {c.max:g}")
            if column.regex is not None:
                matches = pc.match_substring_regex(typed.cast(pa.string()), column.regex)
                fail(column.name, "regex", pc.invert(matches),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} does not match {c.regex}")
            if column.enum is not None:
                allowed = pc.is_in(typed.cast(pa.string()), value_set=pa.array(column.enum))
                fail(column.name, "enum", pc.and_(pc.is_valid(typed), pc.invert(allowed)),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} is not one of "
                     + ", ".join(c.enum or []))
            if column.unique:
                fail(column.name, "unique", self._unique_mask(column, typed),
                     lambda i, c=column, t=text: f"{c.name}: {_show(t[i].as_py())} appears more than once")

        typed_columns += [batch.column(name) for name in self.extra]
        typed_batch = pa.Table.from_arrays(typed_columns, schema=_nullable(self.output_schema))
        for rule in self.rules:
            fail(rule.name, "rule", self._rule_failures(rule, typed_batch), self._rule_message(rule, typed_batch))
        if self.sort is not None:
            self._check_sort(typed_batch, first_row)

        rows = np.arange(first_row, first_row + n, dtype=np.int64)
        if not failures:
            markers = {name: marked.true_count for name, marked in marked_columns.items()}
            return BatchResult(typed_batch, _empty_rejects(self.header), rows, markers)

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
        keep = pc.invert(any_failure)
        markers = {name: pc.and_(marked, keep).true_count for name, marked in marked_columns.items()}
        return BatchResult(typed_batch.filter(keep), rejected, rows[keep.to_numpy(zero_copy_only=False)], markers)

    def _rule_failures(self, rule: RowRule, table: pa.Table) -> pa.Array:
        try:
            result = evaluate(rule.check, table)
        except (ExpressionError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise FileRejected(f"rule {rule.name} ({rule.check}) cannot be evaluated: {exc}") from exc
        if isinstance(result, pa.Scalar):
            result = pa.array([result.as_py()] * table.num_rows, pa.bool_())
        if isinstance(result, pa.ChunkedArray):
            result = result.combine_chunks()
        if not pa.types.is_boolean(result.type):
            raise FileRejected(f"rule {rule.name} ({rule.check}) is not a true/false check")
        # A comparison with an empty value is null: nullability is its own rule, so null passes here.
        return pc.invert(pc.fill_null(result, True))

    def _rule_message(self, rule: RowRule, table: pa.Table) -> Callable[[int], str]:
        used = self._rule_columns[rule.check]

        def message(i: int) -> str:
            values = ", ".join(f"{name}={_show(table[name][i].as_py())}" for name in used if name in table.column_names)
            return f"{rule.name}: {rule.message or 'failed ' + rule.check} ({values})"

        return message

    def _check_sort(self, table: pa.Table, first_row: int) -> None:
        """Ascending order of the sort columns, across batches; nulls are not compared."""
        state = self.sort
        assert state is not None
        keys = [table[name].combine_chunks() for name in state.columns]
        if table.num_rows == 0:
            return
        if state.last is not None:
            head = tuple(k[0].as_py() for k in keys)
            if _tuple_less(head, state.last):
                self._sort_violation(first_row, head, state.last_row, state.last, 1)
        if table.num_rows > 1:
            less = pa.array(np.zeros(table.num_rows - 1, dtype=bool))
            equal = pa.array(np.ones(table.num_rows - 1, dtype=bool))
            for key in keys:
                before, after = key.slice(0, len(key) - 1), key.slice(1)
                less = pc.or_(less, pc.fill_null(pc.and_(equal, pc.less(after, before)), False))
                equal = pc.fill_null(pc.and_(equal, pc.equal(after, before)), False)
            count = pc.sum(less).as_py() or 0
            if count:
                i = pc.indices_nonzero(less)[0].as_py()
                self._sort_violation(first_row + i + 1, tuple(k[i + 1].as_py() for k in keys), first_row + i,
                                     tuple(k[i].as_py() for k in keys), count)
        state.last = tuple(k[len(k) - 1].as_py() for k in keys)
        state.last_row = first_row + table.num_rows - 1

    def _sort_violation(self, row: int, value: tuple[Any, ...], before_row: int, before: tuple[Any, ...],
                        count: int) -> None:
        state = self.sort
        assert state is not None
        state.violations += count
        if state.first_violation is None:
            shown = lambda v: ", ".join(str(x) for x in v)  # noqa: E731
            state.first_violation = (f"rows must be in ascending order of {', '.join(state.columns)}: row {row} "
                                     f"({shown(value)}) comes after row {before_row} ({shown(before)})")

    def issue_summary(self) -> list[dict[str, object]]:
        total = max(self.rows_total, 1)
        ordered = sorted(self.issues.values(), key=lambda issue: -issue.count)
        return [
            {"column": i.column, "rule": i.rule, "count": i.count,
             "percent": round(100.0 * i.count / total, 3), "sample_rows": i.sample_rows}
            for i in ordered
        ]


def _required(column: Column, text: str | None) -> str:
    if text is not None and text.strip():
        return f"{column.name}: is required but {_show(text)} marks it missing"
    return f"{column.name}: is required but empty"


def _tuple_less(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if any(x is None for x in a) or any(x is None for x in b):
        return False
    return a < b


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
    # By position, not by name: a header may itself hold a column named _row or _reasons.
    texts = [text for _, _, text in bad_rows]
    blank = [""] * len(bad_rows)
    arrays = [[line for line, _, _ in bad_rows], *([texts] + [blank] * (len(header) - 1) if header else []),
              [f"line {line}: {reason}" if line else reason for line, reason, _ in bad_rows]]
    schema = _empty_rejects(header).schema
    return pa.Table.from_arrays([pa.array(values, f.type) for values, f in zip(arrays, schema, strict=True)],
                                schema=schema)
