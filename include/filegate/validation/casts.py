"""Text → typed columns. Each cast returns the typed array and a mask of values that did not fit the type.

Empty text is null, never invalid: nullability is a rule of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column

INT_PATTERN = r"^[+-]?\d{1,18}$"
FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
DECIMAL_PRECISION = 18  # leaves room for arithmetic in derived columns (38 is the maximum)
DATE_FORMATS = ["%Y-%m-%d"]
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]

CastResult = tuple[pa.Array, pa.Array]


def arrow_type(column: Column) -> pa.DataType:
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "decimal": pa.decimal128(DECIMAL_PRECISION, column.scale),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
        "string": pa.string(),
    }[column.type]


def _blank_to_null(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    trimmed = pc.utf8_trim_whitespace(text)
    is_blank = pc.equal(pc.utf8_length(trimmed), 0)
    return pc.if_else(is_blank, pa.scalar(None, pa.string()), trimmed), is_blank


def _by_pattern(text: pa.Array, pattern: str, target: pa.DataType) -> CastResult:
    values, _ = _blank_to_null(text)
    fits = pc.match_substring_regex(values, pattern)
    invalid = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(fits, False)))
    clean = pc.if_else(invalid, pa.scalar(None, pa.string()), values)
    return pc.cast(clean, target), pc.fill_null(invalid, False)


def cast_int(text: pa.Array, column: Column) -> CastResult:
    return _by_pattern(text, INT_PATTERN, pa.int64())


def cast_float(text: pa.Array, column: Column) -> CastResult:
    return _by_pattern(text, FLOAT_PATTERN, pa.float64())


def cast_decimal(text: pa.Array, column: Column) -> CastResult:
    fraction = rf"(\.\d{{0,{column.scale}}})?" if column.scale else r"\.?"
    return _by_pattern(text, rf"^[+-]?\d{{1,{DECIMAL_PRECISION - column.scale}}}{fraction}$", arrow_type(column))


def cast_bool(text: pa.Array, column: Column) -> CastResult:
    values, _ = _blank_to_null(text)
    lowered = pc.utf8_lower(values)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_WORDS))
    invalid = pc.and_(pc.is_valid(values), pc.invert(pc.or_(is_true, is_false)))
    result = pc.if_else(pc.is_valid(values), is_true, pa.scalar(None, pa.bool_()))
    result = pc.if_else(invalid, pa.scalar(None, pa.bool_()), result)
    return result, pc.fill_null(invalid, False)


def _parse_times(text: pa.Array, formats: list[str], unit_type: pa.DataType) -> CastResult:
    values, _ = _blank_to_null(text)
    parsed = pa.nulls(len(values), pa.timestamp("us"))
    for fmt in formats:
        attempt = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
        parsed = pc.coalesce(parsed, attempt)
    invalid = pc.and_(pc.is_valid(values), pc.is_null(parsed))
    return pc.cast(parsed, unit_type), pc.fill_null(invalid, False)


def cast_date(text: pa.Array, column: Column) -> CastResult:
    return _parse_times(text, [column.format] if column.format else DATE_FORMATS, pa.date32())


def cast_datetime(text: pa.Array, column: Column) -> CastResult:
    return _parse_times(text, [column.format] if column.format else DATETIME_FORMATS, pa.timestamp("us"))


def cast_string(text: pa.Array, column: Column) -> CastResult:
    _, is_blank = _blank_to_null(text)
    # Strings keep their exact text; only an all-blank cell becomes null.
    result = pc.if_else(is_blank, pa.scalar(None, pa.string()), text)
    return result, pc.and_(is_blank, pa.scalar(False))


CASTS: dict[str, Callable[[pa.Array, Column], CastResult]] = {
    "int": cast_int,
    "float": cast_float,
    "decimal": cast_decimal,
    "bool": cast_bool,
    "date": cast_date,
    "datetime": cast_datetime,
    "string": cast_string,
}


def cast_column(text: pa.Array, column: Column) -> CastResult:
    return CASTS[column.type](text, column)
