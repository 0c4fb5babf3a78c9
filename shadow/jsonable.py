"""JSON for every value a database driver or the verifier can hand to the state store.

orjson writes str, int, float, bool, None, dict, list, tuple, datetime, date, time and
UUID itself; `default` below covers the rest, so that storing a sample never fails on a
value's type:

    UUID subclasses        -> their text
    Decimal                -> its exact text ("12.50"), never a rounded float
    timedelta (intervals)  -> seconds as a number
    bytes, memoryview      -> {"bytes": length, "base64": ...} (first 4 KiB only)
    set, frozenset         -> a sorted list (by text)
    mappings (a Record)    -> an object;  other iterables -> a list
    a range (asyncpg Range: lower, upper, bounds) -> {"lower", "upper", "bounds", "empty"}
    anything else          -> "<TypeName>: its text" (cut at 200 characters)
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson

_MAX_BYTES = 4096
_OPTIONS = orjson.OPT_NON_STR_KEYS


def default(value: Any) -> Any:
    """orjson's `default` hook: a JSON-ready stand-in for `value` (see the module doc)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID type is a subclass
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return {"bytes": len(data), "base64": base64.b64encode(data[:_MAX_BYTES]).decode()}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if _is_range(value):
        return {"lower": value.lower, "upper": value.upper,
                "bounds": ("[" if value.lower_inc else "(") + (")" if not value.upper_inc else "]"),
                "empty": bool(value.isempty)}
    if isinstance(value, Mapping) or hasattr(value, "items") and hasattr(value, "keys"):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return f"<{type(value).__name__}: {str(value)[:200]}>"


def _is_range(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("lower", "upper", "lower_inc", "upper_inc",
                                                   "isempty"))


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes; never fails on a value's type."""
    return orjson.dumps(value, default=default, option=_OPTIONS)
