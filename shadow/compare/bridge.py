"""The dialect bridge: one canonicaliser for reply leaves and database row values.

SQLite and PostgreSQL render the same fact differently: `0/1` vs `true/false`, text
timestamps vs `timestamptz`, `15` vs `Decimal('15.00')`, JSON text vs parsed `jsonb`,
`memoryview` vs `bytes`. A `ValueKind`, taken from the declared column types
(`kind_of_sqlite`, `kind_of_postgres`, `pair_kind`, defined in `kinds` and exported
here) or from the reply rules, says what a value means; `canonical` maps it to one form
per meaning, `values_equal` compares two values on that meaning and says whether the
bridge was needed to call them equal.

Canonical forms, by kind:

    BOOL       bool
    INTEGER    int (a non-integral value stays a Decimal, so it never equals an int)
    NUMERIC    int when integral, else Decimal (floats through their shortest repr)
    TIMESTAMP  timezone-aware datetime in UTC (naive input means UTC)
    TEXT       str
    JSON       CanonicalJson: compact JSON text with sorted keys, integral floats as ints
    BYTES      bytes
    ANY        by the value's own type: no string is parsed as something else

A value that does not fit its kind is returned unchanged and compared as it is; two
containers that cannot even be encoded (nested deeper than 254 levels) are called
different, never equal. Nothing here raises.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from shadow.compare.kinds import ValueKind, kind_of_postgres, kind_of_sqlite, pair_kind

__all__ = [
    "CanonicalJson", "ValueKind", "canonical", "is_numeric_text", "kind_of_postgres",
    "kind_of_sqlite", "pair_kind", "parse_instant", "values_equal",
]


@dataclass(frozen=True, slots=True)
class CanonicalJson:
    """The canonical form of a JSON value: its compact text with sorted keys."""

    text: str

    def __str__(self) -> str:
        return self.text


_NO_FORM = object()
_TRUE_WORDS = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "f", "false", "n", "no", "off"})
_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_TIMESTAMP_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?\Z"
)
_LARGEST_EXACT_FLOAT = 2**53
_CANONICAL_FAILURES = (ValueError, TypeError, ArithmeticError, OSError)


def is_numeric_text(text: str) -> bool:
    """True when `text` spells a plain decimal number (`-4.5`, `1e3`; not `nan`, `0x1`)."""
    return _NUMERIC_TEXT.match(text) is not None


def parse_instant(text: str) -> datetime | None:
    """The UTC instant an ISO-8601-like timestamp names, or None.

    Accepts what SQLite and PostgreSQL print: `2026-02-04`, `2026-02-04 15:47[:20[.123]]`,
    `T` for the space, an offset `Z`, `+01`, `+0100`, `+01:00`. No offset means UTC.
    """
    if not _TIMESTAMP_TEXT.match(text):
        return None
    text = text.replace("t", "T").replace("z", "+00:00").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def canonical(value: Any, kind: ValueKind, *, empty_is_null: bool = False) -> tuple[object, bool]:
    """(canonical form, changed): the form of `value` under `kind` (see the module doc),
    and whether that form differs from the raw value, so callers can count what the
    bridge normalised. With `empty_is_null`, `''` becomes None."""
    if value is None:
        return None, False
    if empty_is_null and type(value) is str and value == "":
        return None, True
    try:
        form = _CANONICALISERS[kind](value)
    except _CANONICAL_FAILURES:
        form = _NO_FORM
    if form is _NO_FORM:
        return value, False
    return form, not _identical(form, value)


def values_equal(
    a: Any,
    b: Any,
    kind: ValueKind,
    *,
    tolerance: float = 0.0,
    empty_is_null: bool = False,
) -> tuple[bool, bool]:
    """(equal, normalised): whether `a` and `b` mean the same under `kind`, and whether
    they are equal only thanks to the bridge (their raw values differ but their canonical
    forms agree, or lie within `tolerance`: an absolute difference for numbers, seconds
    for timestamps). `''` and None differ unless `empty_is_null`."""
    if a is b or _identical(a, b):
        return True, False
    form_a, _ = canonical(a, kind, empty_is_null=empty_is_null)
    form_b, _ = canonical(b, kind, empty_is_null=empty_is_null)
    if _same_form(form_a, form_b):
        return True, True
    if tolerance > 0 and _within(form_a, form_b, tolerance):
        return True, True
    return False, False


def _identical(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) in (dict, list, tuple):
        text = _json_text(a)
        return text is not None and text == _json_text(b)
    return bool(a == b)


def _same_form(a: object, b: object) -> bool:
    if _is_number_form(a) and _is_number_form(b):
        if _is_nan(a) or _is_nan(b):
            return _is_nan(a) and _is_nan(b)
        return a == b
    return _identical(a, b)


def _within(a: object, b: object, tolerance: float) -> bool:
    if _is_number_form(a) and _is_number_form(b):
        if not (Decimal(a).is_finite() and Decimal(b).is_finite()):
            return False
        try:
            return abs(Decimal(a) - Decimal(b)) <= Decimal(repr(tolerance))
        except ArithmeticError:
            return False
    if isinstance(a, datetime) and isinstance(b, datetime) and a.tzinfo and b.tzinfo:
        return abs((a - b).total_seconds()) <= tolerance
    return False


def _is_number_form(value: object) -> bool:
    return type(value) is int or type(value) is Decimal


def _is_nan(value: object) -> bool:
    return type(value) is Decimal and value.is_nan()


def _number(value: Any) -> object:
    kind = type(value)
    if kind is int:
        return value
    if kind is bool:
        return int(value)
    if kind is float:
        if not math.isfinite(value):
            return Decimal(repr(value).replace("inf", "Infinity"))
        return _tidy(Decimal(repr(value)))
    if kind is Decimal:
        return _tidy(value)
    if kind is str and _NUMERIC_TEXT.match(value.strip()):
        return _tidy(Decimal(value.strip()))
    return _NO_FORM


def _tidy(number: Decimal) -> object:
    if number.is_nan():
        return Decimal("NaN")
    if number.is_finite() and number.adjusted() < 40 and number == number.to_integral_value():
        return int(number)
    return number


def _boolean(value: Any) -> object:
    kind = type(value)
    if kind is bool:
        return value
    if kind in (int, float, Decimal):
        if value == 0:
            return False
        if value == 1:
            return True
        return _NO_FORM
    if kind is str:
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return _NO_FORM


def _timestamp(value: Any) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if type(value) is str:
        moment = parse_instant(value.strip())
        return _NO_FORM if moment is None else moment
    if type(value) in (int, float, Decimal):
        return datetime.fromtimestamp(float(value), UTC)
    return _NO_FORM


def _text(value: Any) -> object:
    kind = type(value)
    if kind is str:
        return value
    if kind in (bytes, bytearray, memoryview):
        return bytes(value).decode("utf-8")
    if kind is int or kind is Decimal:
        return str(value)
    if kind is float:
        return repr(value)
    if kind is uuid.UUID:
        return str(value)
    if kind is time or kind is datetime or kind is date:
        return value.isoformat()
    return _NO_FORM


def _json(value: Any) -> object:
    if type(value) in (str, bytes, bytearray, memoryview):
        value = orjson.loads(bytes(value) if type(value) is not str else value)
    text = _json_text(value)
    return _NO_FORM if text is None else CanonicalJson(text)


def _bytes(value: Any) -> object:
    kind = type(value)
    if kind is bytes:
        return value
    if kind in (bytearray, memoryview):
        return bytes(value)
    if kind is str:
        return value.encode("utf-8")
    return _NO_FORM


def _any(value: Any) -> object:
    kind = type(value)
    if kind is float or kind is Decimal:
        return _number(value)
    if kind in (bytearray, memoryview):
        return bytes(value)
    if kind is datetime or kind is date:
        return _timestamp(value)
    if kind in (dict, list, tuple):
        return _json(value)
    return value


def _json_text(value: Any) -> str | None:
    """Compact sorted-key JSON text of `value` with integral floats written as ints;
    None when it cannot be encoded (too deep, not JSON data)."""
    try:
        return orjson.dumps(_integral_floats(value), option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return None


def _integral_floats(value: Any) -> Any:
    if type(value) is float:
        return _as_int(value)
    if type(value) not in (dict, list, tuple):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        holder, slot, node = stack.pop()
        if type(node) is dict:
            copy: Any = {}
            holder[slot] = copy
            for key, child in node.items():
                stack.append((copy, key, child))
        elif type(node) in (list, tuple):
            copy = [None] * len(node)
            holder[slot] = copy
            for index, child in enumerate(node):
                stack.append((copy, index, child))
        elif type(node) is float:
            holder[slot] = _as_int(node)
        else:
            holder[slot] = node
    return root[0]


def _as_int(number: float) -> float | int:
    if number.is_integer() and abs(number) < _LARGEST_EXACT_FLOAT:
        return int(number)
    return number


_CANONICALISERS = {
    ValueKind.ANY: _any,
    ValueKind.BOOL: _boolean,
    ValueKind.INTEGER: _number,
    ValueKind.NUMERIC: _number,
    ValueKind.TEXT: _text,
    ValueKind.TIMESTAMP: _timestamp,
    ValueKind.JSON: _json,
    ValueKind.BYTES: _bytes,
}
