"""Shapes: a value as a stored sample may hold it — kept in the clear, or its structure
and a keyed fingerprint.

What is kept without a rule, and why (the default is strict for strings):
- `true`, `false`, `null`: one bit or none; they are what most dialect bugs are about.
- numbers whose integer part has fewer than 9 digits (with `keep_numbers`, the default):
  counts, scores, amounts, small ids say nothing about who a person is on their own, and
  they explain `3` vs `3.0` and off-by-one ids. Phone, card and national numbers have 9
  digits or more, so longer numbers are fingerprinted.
- no string, however short: a first name is as short as an enum word. A string is shown
  as `«str 19 #fingerprint»`, plus its format when it is wholly a date, a time or a
  number (`«str 19 datetime 9999-99-99 99:99:99 #…»`), which explains a rendering change
  without holding the value.
- keys are structure and kept, unless a key is itself a value (an e-mail, digits, a long
  or random-looking token): such a key is shown as `«key #fingerprint»`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from collections.abc import Sequence
from typing import Any

from shadow.privacy.fingerprint import Fingerprinter
from shadow.privacy.keep import KeepRules

MAX_DEPTH = 32
MAX_ITEMS = 100
MAX_KEYS = 4096
"""Keys remembered with how they are shown (documents repeat their keys)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}\Z")
_DIGIT = re.compile(r"\d")
_FORMATS = (
    ("datetime", re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?\Z")),
    ("date", re.compile(r"\d{4}-\d\d-\d\d\Z")),
    ("time", re.compile(r"\d\d:\d\d(:\d\d(\.\d+)?)?\Z")),
    ("number", re.compile(r"[+-]?(\d{1,8}(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")),
)


def type_name(value: Any) -> str:
    """The JSON type word of a value: str, int, float, bool, null, object, array."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def safe_scalar(value: Any, keep_numbers: bool = True) -> bool:
    """True for the values kept without a rule: booleans, null, short numbers."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, Decimal):
        return keep_numbers and value.is_finite() and abs(value) < 10**8
    if isinstance(value, int):
        return keep_numbers and len(str(abs(value))) < 9
    if isinstance(value, float):
        return keep_numbers and (value != value or abs(value) < 1e8)
    return False


def is_name(key: str) -> bool:
    """True when a key reads as a name (structure), not as a value: an identifier of at
    most 40 characters with at most 3 digits."""
    return bool(_NAME.match(key)) and len(_DIGIT.findall(key)) <= 3


def string_format(text: str) -> str:
    """`datetime 9999-99-99 99:99:99`, `date …`, `time …`, `number`, or ''."""
    if not text or text[0] not in "0123456789+-.":
        return ""
    for name, pattern in _FORMATS:
        if pattern.match(text):
            return name if name == "number" else f"{name} {_DIGIT.sub('9', text)}"
    return ""


class Shaper:
    """Turns values into what a sample stores, under one set of keep rules and one key."""

    def __init__(self, keep: KeepRules, fingerprints: Fingerprinter,
                 keep_numbers: bool = True) -> None:
        self.keep = keep
        self.fp = fingerprints.of
        self.keep_numbers = keep_numbers
        self._keys: dict[str, str] = {}

    def placeholder(self, value: Any) -> str:
        """The stored stand-in of a value that is not kept."""
        if isinstance(value, str):
            fmt = string_format(value)
            return f"«str {len(value)}{' ' + fmt if fmt else ''} {self.fp(value)}»"
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f"«bytes {len(value)} {self.fp(value)}»"
        return f"«{type_name(value)} {self.fp(value)}»"

    def kept_name(self, word: str) -> bool:
        """True when `word` was shown as itself as a key, table or column name."""
        return self._keys.get(word) == word

    def key(self, key: Any) -> str:
        """A key as stored: itself when it reads as a name, else `«key #…»`."""
        key = str(key)
        shown = self._keys.get(key)
        if shown is None:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            shown = self._keys[key] = key if is_name(key) else f"«key {self.fp(key)}»"
        return shown

    def leaf(self, value: Any, kept: bool = False) -> Any:
        """A scalar as stored: itself when `kept` or safe, else its placeholder. A kept
        value JSON has no type for (a decimal, a timestamp of a row) is shown as text."""
        if kept or safe_scalar(value, self.keep_numbers):
            if value is None or isinstance(value, (str, int, float, bool)):
                return value
            return f"«{type_name(value).lower()} {value}»"
        return self.placeholder(value)

    def value(self, value: Any, kept: bool = False) -> Any:
        """Any value with no JSON path of its own (row images, header values)."""
        return self.json(value, None, kept)

    def json(self, value: Any, path: Sequence[str | int] | None = (), kept: bool = False,
             depth: int = 0) -> Any:
        """A JSON value as stored. `path` is where it sits in its document (None: no
        path rules apply); keep rules are matched against the real keys."""
        if path is not None and not self.keep.paths:
            path = None  # no path rule can match: do not track where we are
        kept = kept or (path is not None and self.keep.path(path))
        kind = type(value)
        if kind is str:
            return value if kept else self.placeholder(value)
        if kind is dict or isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return f"«object of {len(value)} keys, nested too deep»"
            return {self.key(k): self.json(v, None if path is None else (*path, str(k)),
                                           kept, depth + 1) for k, v in value.items()}
        if kind is list or isinstance(value, (list, tuple)):
            if depth >= MAX_DEPTH:
                return f"«array of {len(value)} items, nested too deep»"
            items = [self.json(v, None if path is None else (*path, i), kept, depth + 1)
                     for i, v in enumerate(value[:MAX_ITEMS])]
            if len(value) > MAX_ITEMS:
                items.append(f"«{len(value) - MAX_ITEMS} more items»")
            return items
        return self.leaf(value, kept)

    def headers(self, headers: Sequence[tuple[str, str]]) -> list[list[str]]:
        """Header names (as keys) with their values kept only where a rule says so."""
        return [[self.key(k), v if self.keep.header(k) else self.placeholder(v)]
                for k, v in headers]

    def row(self, table: str, image: dict[str, Any] | None) -> dict[str, Any] | None:
        """A row image: columns named by a rule kept, others as leaves."""
        if image is None:
            return None
        return {self.key(col): (self.value(v, True) if self.keep.column(table, col)
                                else self.value(v)) for col, v in image.items()}
