"""A small, safe expression language over columns, evaluated with pyarrow compute.

Contracts say `expr: "quantity * unit_price"` or `filter: "currency != 'XXX'"`; only arithmetic, comparisons,
`and`/`or`/`not`, column names, literals and a few named functions are allowed — never arbitrary Python.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# The syntax is checked without Arrow: contracts are parsed (and their expressions checked) inside the Airflow
# api-server, which must never import pyarrow (a crash in it takes the whole UI down). Arrow is imported only
# when an expression is evaluated, in the processes that process files.
BINARY_OPS: tuple[type[ast.operator], ...] = (ast.Add, ast.Sub, ast.Mult, ast.Div)
COMPARE_OPS: tuple[type[ast.cmpop], ...] = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
FUNCTION_NAMES = frozenset({"upper", "lower", "trim", "round", "year", "month", "day", "coalesce", "date", "abs",
                            "length", "concat"})


class _Kernels:
    """The pyarrow compute function behind each operator and function name."""

    def __init__(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.pa, self.pc = pa, pc
        self.binary: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
            ast.Add: pc.add_checked,
            ast.Sub: pc.subtract_checked,
            ast.Mult: pc.multiply_checked,
            ast.Div: pc.divide,
        }
        self.compare: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
            ast.Eq: pc.equal,
            ast.NotEq: pc.not_equal,
            ast.Lt: pc.less,
            ast.LtE: pc.less_equal,
            ast.Gt: pc.greater,
            ast.GtE: pc.greater_equal,
        }
        self.functions: dict[str, Callable[..., Any]] = {
            "upper": pc.utf8_upper,
            "lower": pc.utf8_lower,
            "trim": pc.utf8_trim_whitespace,
            "round": lambda value, digits=0: pc.round(value, ndigits=digits),
            "year": pc.year,
            "month": pc.month,
            "day": pc.day,
            "coalesce": pc.coalesce,
            "date": lambda value: pc.cast(value, pa.date32()),
            "abs": pc.abs_checked,
            "length": pc.utf8_length,
            "concat": lambda *parts: pc.binary_join_element_wise(*[pc.cast(p, pa.string()) for p in parts], ""),
        }


@cache
def _kernels() -> _Kernels:
    return _Kernels()


class ExpressionError(ValueError):
    pass


def parse(expr: str) -> ast.Expression:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {expr!r}: {exc.msg}") from exc
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.BinOp, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Name, ast.Constant,
                   ast.Call, ast.Load, ast.And, ast.Or, ast.Not, ast.USub, *BINARY_OPS, *COMPARE_OPS)
        if not isinstance(node, allowed):
            raise ExpressionError(f"{type(node).__name__} is not allowed in expression {expr!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTION_NAMES):
            raise ExpressionError(f"unknown function in {expr!r}; allowed: {', '.join(sorted(FUNCTION_NAMES))}")
    return tree


def columns_used(expr: str) -> set[str]:
    tree = parse(expr)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - calls


def evaluate(expr: str, table: pa.Table) -> Any:
    return _visit(parse(expr), expr, table, _kernels())


def _visit(node: ast.AST, expr: str, table: pa.Table, k: _Kernels) -> Any:
    # A module-level function, not a recursive closure: a closure that calls itself is a reference cycle that
    # keeps `table` (a whole batch) alive until the garbage collector happens to run, and memory grows with it.
    def visit(child: ast.AST) -> Any:
        return _visit(child, expr, table, k)

    if isinstance(node, ast.Expression):
        return visit(node.body)
    if isinstance(node, ast.Constant):
        return k.pa.scalar(node.value)
    if isinstance(node, ast.Name):
        if node.id not in table.column_names:
            raise ExpressionError(f"expression {expr!r} names unknown column {node.id!r}")
        return table[node.id]
    if isinstance(node, ast.BinOp):
        return k.binary[type(node.op)](visit(node.left), visit(node.right))
    if isinstance(node, ast.UnaryOp):
        operand = visit(node.operand)
        return k.pc.invert(operand) if isinstance(node.op, ast.Not) else k.pc.negate_checked(operand)
    if isinstance(node, ast.BoolOp):
        values = [visit(v) for v in node.values]
        combine = k.pc.and_kleene if isinstance(node.op, ast.And) else k.pc.or_kleene
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result
    if isinstance(node, ast.Compare):
        left = visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = visit(right_node)
            step = k.compare[type(op)](left, right)
            result = step if result is None else k.pc.and_kleene(result, step)
            left = right
        return result
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return k.functions[node.func.id](*[visit(a) for a in node.args])
    raise ExpressionError(f"unsupported expression {expr!r}")

