"""Streaming group-by: each batch is reduced to partial aggregates (pyarrow's hash group-by), partials are
re-reduced whenever they pile up, and `finish` produces one row per group. Memory follows the number of groups,
not the number of rows: a marketplace file of millions of transactions becomes one row per seller, product, day.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import AggregateSpec

COMPACT_ROWS = 1_000_000
# How the partials of each function combine across batches.
COMBINE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


class AggregateError(ValueError):
    pass


class Aggregator:
    def __init__(self, spec: AggregateSpec) -> None:
        self.spec = spec
        self.measures = spec.parsed()
        self.partials: list[pa.Table] = []
        self.partial_rows = 0

    def _first_pass(self, table: pa.Table) -> pa.Table:
        aggregations: list[tuple[str | list[str], str]] = []
        names: list[str] = []
        for output, function, column in self.measures:
            if function == "mean":
                aggregations += [(column, "sum"), (column, "count")]
                names += [f"{output}__sum", f"{output}__count"]
            elif column == "*":
                aggregations.append(([], "count_all"))
                names.append(output)
            else:
                aggregations.append((column, function))
                names.append(output)
        return self._group(table, aggregations, names)

    def _group(self, table: pa.Table, aggregations: list[tuple[str | list[str], str]], names: list[str]) -> pa.Table:
        try:
            grouped = table.group_by(self.spec.group_by, use_threads=False).aggregate(aggregations)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, KeyError) as exc:
            raise AggregateError(f"aggregate by {', '.join(self.spec.group_by)} failed: {exc}") from exc
        # Aggregates come in the order asked; the keys lead (pyarrow ≥ 14) or trail (older): rename by position.
        keys = self.spec.group_by
        if grouped.column_names[: len(keys)] == keys:
            return grouped.rename_columns(keys + names)
        return grouped.rename_columns(names + keys)

    def _combine(self, partials: pa.Table) -> pa.Table:
        aggregations: list[tuple[str | list[str], str]] = []
        names: list[str] = []
        for output, function, _ in self.measures:
            parts = [("__sum", "sum"), ("__count", "sum")] if function == "mean" else [("", COMBINE[function])]
            for suffix, combiner in parts:
                aggregations.append((f"{output}{suffix}", combiner))
                names.append(f"{output}{suffix}")
        return self._group(partials, aggregations, names)

    def update(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        partial = self._first_pass(table)
        self.partials.append(partial)
        self.partial_rows += partial.num_rows
        if self.partial_rows > COMPACT_ROWS and len(self.partials) > 1:
            merged = self._combine(pa.concat_tables(self.partials, promote_options="permissive"))
            self.partials, self.partial_rows = [merged], merged.num_rows

    def finish(self) -> pa.Table | None:
        if not self.partials:
            return None
        combined = self._combine(pa.concat_tables(self.partials, promote_options="permissive"))
        columns = {name: combined[name] for name in self.spec.group_by}
        for output, function, _ in self.measures:
            if function == "mean":
                columns[output] = pc.divide(pc.cast(combined[f"{output}__sum"], pa.float64()),
                                            pc.cast(combined[f"{output}__count"], pa.float64()))
            else:
                columns[output] = combined[output]
        table = pa.table(columns)
        return table.sort_by([(name, "ascending") for name in self.spec.group_by])
