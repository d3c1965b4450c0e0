"""Text → typed columns. Each cast returns the typed array and a mask of values that did not fit the type.

Empty text is null, never invalid: nullability is a rule of its own. So are missing-value markers (`NA`, `NULL`,
`#N/A`, … see `Markers`): a marked cell is null, never invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filegate.contracts.model import Column

INT_PATTERN = r"^[+-]?\d{1,19}$"
FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
DECIMAL_PRECISION = 18  # leaves room for arithmetic in derived columns (38 is the maximum)
ISO_DATE = "%Y-%m-%d"
DATE_FORMATS = [ISO_DATE]
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]

CastResult = tuple[pa.Array, pa.Array]


def arrow_type(column: Column) -> pa.DataType:
    return type_for(column.type, column.scale)


def type_for(kind: str, scale: int = 2) -> pa.DataType:
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "decimal": pa.decimal128(DECIMAL_PRECISION, scale),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
        "string": pa.string(),
    }[kind]


ZERO = pa.scalar(0, pa.int32())


def may_contain(text: pa.Array, needles: bytes) -> bool:
    """False when no value can hold any of the bytes `needles`: one scan of the data buffer (memchr speed)
    instead of a per-value kernel. A sliced array's buffer also holds its neighbours' bytes, so True only
    means "look closer"."""
    buffers = text.buffers()
    data = buffers[2] if len(buffers) > 2 else None
    if data is None or data.size == 0:
        return False
    raw = data.to_pybytes()
    return any(raw.find(needle) >= 0 for needle in (bytes([b]) for b in needles))


def is_empty(text: pa.Array) -> pa.Array:
    # A typed scalar: comparing with a bare Python 0 costs a slow implicit-cast dispatch (seconds on first use).
    return pc.equal(pc.binary_length(text), ZERO)


def _blank_to_null(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    trimmed = pc.utf8_trim_whitespace(text)
    is_blank = is_empty(trimmed)
    return pc.if_else(is_blank, pa.scalar(None, pa.string()), trimmed), is_blank


def _no_invalid(values: pa.Array) -> pa.Array:
    return pa.array(np.zeros(len(values), dtype=bool), pa.bool_())


def _cast_each(values: pa.Array, target: pa.DataType) -> CastResult:
    """Value by value, for the rare batch where a well-formed value still does not fit (e.g. overflow)."""
    out, bad = [], []
    for value in values.to_pylist():
        try:
            out.append(None if value is None else pc.cast(pa.array([value]), target)[0].as_py())
            bad.append(False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            bad.append(True)
    return pa.array(out, target), pa.array(bad, pa.bool_())


def _by_pattern(values: pa.Array, pattern: str, target: pa.DataType) -> CastResult:
    """The slow path: find the values that do not look right, null them, cast the rest."""
    fits = pc.match_substring_regex(values, pattern)
    invalid = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(fits, False)))
    clean = pc.if_else(invalid, pa.scalar(None, pa.string()), values)
    clean = pc.replace_substring_regex(clean, r"^\+", "")  # Arrow's parser refuses a leading plus
    try:
        return pc.cast(clean, target), pc.fill_null(invalid, False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed, overflow = _cast_each(clean, target)
        return typed, pc.or_(pc.fill_null(invalid, False), overflow)


def _empty_to_null(text: pa.Array) -> pa.Array:
    """Cheap: only the empty string becomes null (no copy of the text); padded values go the slow path."""
    empty = is_empty(text)
    if not empty.true_count:
        return text
    return pc.if_else(empty, pa.scalar(None, pa.string()), text)


def _fast_or_pattern(text: pa.Array, pattern: str, target: pa.DataType) -> CastResult:
    """Arrow's own parser first (one pass, no regex, no trimming copy); only a batch with a value that is
    padded, blank or bad pays for trimming and the regex."""
    try:
        return pc.cast(_empty_to_null(text), target), _no_invalid(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values, _ = _blank_to_null(text)
        return _by_pattern(values, pattern, target)


def cast_int(text: pa.Array, column: Column) -> CastResult:
    # Arrow's parser also reads hexadecimal (0x1F is 31); a contract's int is decimal digits only.
    if may_contain(text, b"xX") and pc.any(pc.match_substring(text, "x", ignore_case=True)).as_py():
        values, _ = _blank_to_null(text)
        return _by_pattern(values, INT_PATTERN, pa.int64())
    return _fast_or_pattern(text, INT_PATTERN, pa.int64())


def cast_float(text: pa.Array, column: Column) -> CastResult:
    typed, invalid = _fast_or_pattern(text, FLOAT_PATTERN, pa.float64())
    # Arrow reads nan and inf; a contract's float means a finite number, as the slow path's pattern says.
    finite = pc.is_finite(typed)
    if finite.false_count:  # null stays null; false is nan or ±inf
        not_finite = pc.fill_null(pc.invert(finite), False)
        typed = pc.if_else(not_finite, pa.scalar(None, pa.float64()), typed)
        invalid = pc.or_(invalid, not_finite)
    return typed, invalid


def cast_decimal(text: pa.Array, column: Column) -> CastResult:
    fraction = rf"(\.\d{{0,{column.scale}}})?" if column.scale else r"\.?"
    pattern = rf"^[+-]?\d{{1,{DECIMAL_PRECISION - column.scale}}}{fraction}$"
    # Arrow also reads exponents (1e2); the contract's decimal is plain digits, so such a batch takes the slow path.
    if not may_contain(text, b"eE") or not pc.any(pc.match_substring(text, "e", ignore_case=True)).as_py():
        try:
            return pc.cast(_empty_to_null(text), arrow_type(column)), _no_invalid(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    values, _ = _blank_to_null(text)
    return _by_pattern(values, pattern, arrow_type(column))


def cast_bool(text: pa.Array, column: Column) -> CastResult:
    values, _ = _blank_to_null(text)
    lowered = pc.utf8_lower(values)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_WORDS))
    invalid = pc.and_(pc.is_valid(values), pc.invert(pc.or_(is_true, is_false)))
    result = pc.if_else(pc.is_valid(values), is_true, pa.scalar(None, pa.bool_()))
    result = pc.if_else(invalid, pa.scalar(None, pa.bool_()), result)
    return result, pc.fill_null(invalid, False)


ROUND_TRIP_UNSAFE = ("%b", "%B", "%a", "%A", "%p", "%f", "%z", "%Z", "%j", "%y", "%e")


def _strptime_checked(values: pa.Array, fmt: str) -> pa.Array:
    """strptime, then a round trip: the C library reads 2026-02-30 as 2 March; printing it back exposes that."""
    parsed = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
    if any(code in fmt for code in ROUND_TRIP_UNSAFE):
        return parsed
    printed = pc.strftime(pc.cast(parsed, pa.timestamp("s")), format=fmt)
    same = pc.fill_null(pc.equal(printed, values), False)
    if pc.all(pc.or_(same, pc.is_null(parsed))).as_py():
        return parsed
    return pc.if_else(same, parsed, pa.scalar(None, parsed.type))


def _strptime_all(values: pa.Array, formats: list[str]) -> pa.Array:
    parsed = _strptime_checked(values, formats[0])
    for fmt in formats[1:]:
        missing = pc.and_(pc.is_valid(values), pc.is_null(parsed))
        if not pc.any(missing).as_py():
            break  # every value read with an earlier format: skip the other passes
        parsed = pc.coalesce(parsed, _strptime_checked(values, fmt))
    return parsed


def _parse_times(text: pa.Array, formats: list[str], unit_type: pa.DataType) -> CastResult:
    values = _empty_to_null(text)
    parsed = _strptime_all(values, formats)
    invalid = pc.and_(pc.is_valid(values), pc.is_null(parsed))
    if pc.any(invalid).as_py():  # padded or blank values: trim, then judge
        values, _ = _blank_to_null(text)
        parsed = _strptime_all(values, formats)
        invalid = pc.and_(pc.is_valid(values), pc.is_null(parsed))
    return pc.cast(parsed, unit_type), pc.fill_null(invalid, False)


def cast_date(text: pa.Array, column: Column) -> CastResult:
    if column.format in (None, ISO_DATE):
        # Arrow's own ISO parser accepts exactly the canonical YYYY-MM-DD of real days (no 2026-02-30, no
        # padding), which is what strptime plus the round trip accept, at a twentieth of the cost.
        try:
            return pc.cast(_empty_to_null(text), pa.date32()), _no_invalid(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return _parse_times(text, [column.format] if column.format else DATE_FORMATS, pa.date32())


# The lengths of DATETIME_FORMATS' texts: YYYY-MM-DD, YYYY-MM-DD[T ]hh:mm, YYYY-MM-DD[T ]hh:mm:ss; and of a
# missing value (null or empty).
ISO_DATETIME_LENGTHS = pa.array([0, 10, 16, 19], pa.int32())


def _iso_datetimes(text: pa.Array) -> pa.Array | None:
    """Arrow's own ISO 8601 parser, when every value has the length of one of DATETIME_FORMATS: one pass that
    rejects impossible dates (2026-02-30, 10:00:60) itself. Of the texts with those lengths it accepts exactly
    what strptime with the round trip accepts (tests/unit/test_casts_datetime.py compares them), at a
    twentieth of the cost. None when a value does not fit: the batch takes the strptime path."""
    lengths = pc.fill_null(pc.binary_length(text), ZERO)
    if not pc.all(pc.is_in(lengths, value_set=ISO_DATETIME_LENGTHS)).as_py():
        return None
    try:
        return pc.cast(_empty_to_null(text), pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def cast_datetime(text: pa.Array, column: Column) -> CastResult:
    if column.format is None:
        parsed = _iso_datetimes(text)
        if parsed is not None:
            return parsed, _no_invalid(text)
    return _parse_times(text, [column.format] if column.format else DATETIME_FORMATS, pa.timestamp("us"))


def cast_string(text: pa.Array, column: Column) -> CastResult:
    # Strings keep their exact text; only an empty or all-whitespace cell becomes null.
    is_blank = pc.or_(is_empty(text), pc.utf8_is_space(text))
    if not pc.any(is_blank).as_py():
        return text, _no_invalid(text)
    return pc.if_else(is_blank, pa.scalar(None, pa.string()), text), _no_invalid(text)


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


@dataclass(frozen=True)
class Markers:
    """A column's missing-value markers. `values`: the marker texts (a typed column's without surrounding
    blanks, as its values are read). `always`: match them on every cell before casting (a string column, or a
    marker that is also a valid value of the type, like -999 in an int column); otherwise only the cells that
    did not fit the type are looked up, so a clean batch pays nothing."""

    values: pa.Array
    always: bool
    trim: bool


def markers_for(column: Column, texts: Iterable[str]) -> Markers | None:
    """None when the column has no markers besides blank cells (which are always missing)."""
    trim = column.type != "string"
    kept = sorted({t.strip() if trim else t for t in texts if t.strip()})
    if not kept:
        return None
    values = pa.array(kept, pa.string())
    always = not trim or cast_column(values, column)[1].false_count > 0
    return Markers(values, always, trim)


def _marked(text: pa.Array, markers: Markers) -> pa.Array:
    found = pc.is_in(pc.utf8_trim_whitespace(text) if markers.trim else text, value_set=markers.values)
    return pc.fill_null(found, False)


def cast_marked(text: pa.Array, column: Column, markers: Markers | None) -> tuple[pa.Array, pa.Array, pa.Array | None]:
    """(typed, invalid, marked): like `cast_column`, with the cells holding a marker null and not invalid;
    `marked` is None when no cell held one."""
    cast = CASTS[column.type]
    if markers is None:
        return (*cast(text, column), None)
    if markers.always:
        marked = _marked(text, markers)
        if not marked.true_count:
            return (*cast(text, column), None)
        typed, invalid = cast(pc.if_else(marked, pa.scalar(None, pa.string()), text), column)
        return typed, invalid, marked
    typed, invalid = cast(text, column)
    if not invalid.true_count:
        return typed, invalid, None
    # A value that did not fit is already null in `typed`: a marker among them only stops being invalid.
    where = pc.indices_nonzero(invalid)
    hits = _marked(text.take(where), markers)
    if not hits.true_count:
        return typed, invalid, None
    mask = np.zeros(len(text), dtype=bool)
    mask[where.to_numpy()[hits.to_numpy(zero_copy_only=False)]] = True
    marked = pa.array(mask, pa.bool_())
    return typed, pc.and_(invalid, pc.invert(marked)), marked
