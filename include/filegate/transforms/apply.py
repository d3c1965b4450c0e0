"""Applies a contract's row-wise transforms (rename, cast, derive, filter) to a batch of typed valid rows.
`aggregate` is not row-wise: the engine feeds the result of these steps to filegate.transforms.aggregate."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Aggregate, Cast, Contract, Derive, Filter, Rename
from filegate.expressions import evaluate
from filegate.validation.casts import type_for


def apply_transforms(contract: Contract, table: pa.Table) -> pa.Table:
    for step in contract.transforms:
        if isinstance(step, Rename):
            table = table.rename_columns([step.rename.get(name, name) for name in table.column_names])
        elif isinstance(step, Cast):
            for name, kind in step.cast.items():
                index = table.column_names.index(name)
                table = table.set_column(index, name, pc.cast(table[name], type_for(kind)))
        elif isinstance(step, Derive):
            value = evaluate(step.expr, table)
            if isinstance(value, pa.Scalar):
                value = pa.array([value.as_py()] * table.num_rows, value.type)
            if step.derive in table.column_names:
                table = table.set_column(table.column_names.index(step.derive), step.derive, value)
            else:
                table = table.append_column(step.derive, value)
        elif isinstance(step, Filter):
            table = table.filter(pc.fill_null(evaluate(step.filter, table), False))
        elif isinstance(step, Aggregate):
            break  # the engine aggregates across batches
    return table
