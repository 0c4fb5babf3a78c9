"""Apply a reply's ignore and unordered rules to a lifted JSON document.

`prepare` returns the document as it is compared: object members selected by an ignore
pattern removed, array elements selected by one replaced with null (so the positions of
the others do not shift), and arrays selected by an unordered pattern replaced by a
`Bag`: the same elements sorted by `sort_key`, so two permutations become equal.

Only the branches a pattern can still reach are visited and copied; the rest of the
document is shared with the input, which is never modified. Nothing here recurses, so a
document nested 1 024 levels deep is handled like any other.
"""

from __future__ import annotations

from typing import Any

import orjson

from shadow.compare.bridge import ValueKind, canonical, is_numeric_text, parse_instant
from shadow.compare.rules import BridgeRules, ReplyRules

_LARGEST_EXACT_FLOAT = 2**53


class Bag(list):
    """An array compared as a multiset; its elements are sorted by `sort_key`."""

    __slots__ = ()


def prepare(doc: Any, rules: ReplyRules) -> Any:
    """`doc` with the ignore and unordered rules applied (see the module doc); `doc`
    itself when no rule touches it, None when an ignore pattern selects `$`."""
    ignore, unordered = rules.ignore_set, rules.unordered_set
    if not ignore and not unordered:
        return doc
    if ignore.accepts(ignore.initial):
        return None
    if type(doc) is not dict and type(doc) is not list:
        return doc
    bridge = rules.bridge
    keys: dict[int, bytes] = {}  # id(Bag) -> its sort key, so no level re-spells a subtree
    stack = [_Frame(doc, ignore.initial, unordered.initial, None, None)]
    while True:
        frame = stack[-1]
        item = next(frame.items, None)
        if item is not None:
            key, child = item
            ign = ignore.step(frame.ign, key) if frame.ign else ()
            if ign and ignore.accepts(ign):
                frame.drop()
                continue
            uno = unordered.step(frame.uno, key) if frame.uno else ()
            if (ign or uno) and (type(child) is dict or type(child) is list):
                stack.append(_Frame(child, ign, uno, frame, key))
            else:
                frame.put(key, child, child)
            continue
        stack.pop()
        value = frame.out if frame.changed else frame.node
        if type(value) is list and unordered.accepts(frame.uno):
            value = _bag(value, bridge, keys)
        if frame.parent is None:
            return value
        frame.parent.put(frame.key, value, frame.node)


def _bag(elements: list, bridge: BridgeRules, keys: dict[int, bytes]) -> Bag:
    """`elements` sorted by their sort keys. The bag's own key is remembered, so a bag
    above it embeds it instead of spelling the subtree again (branching `[[..],[..]]`
    nests were quadratic in their depth). Fewer than two elements are in order already
    and get no key: a chain `[[[...]]]` keyed level by level is quadratic too."""
    if len(elements) < 2:
        return Bag(elements)
    element_keys = [sort_key(element, bridge, keys) for element in elements]
    order = sorted(range(len(elements)), key=element_keys.__getitem__)
    bag = Bag(elements[i] for i in order)
    keys[id(bag)] = b"[" + b",".join(element_keys[i] for i in order) + b"]"
    return bag


class _Frame:
    __slots__ = ("node", "items", "out", "ign", "uno", "parent", "key", "changed")

    def __init__(self, node: Any, ign: tuple, uno: tuple, parent: _Frame | None, key: Any) -> None:
        self.node = node
        self.ign = ign
        self.uno = uno
        self.parent = parent
        self.key = key
        self.changed = False
        if type(node) is dict:
            self.items = iter(node.items())
            self.out: dict | list = {}
        else:
            self.items = enumerate(node)
            self.out = []

    def put(self, key: Any, value: Any, original: Any) -> None:
        if type(self.out) is dict:
            self.out[key] = value
        else:
            self.out.append(value)
        if value is not original:
            self.changed = True

    def drop(self) -> None:
        if type(self.out) is list:
            self.out.append(None)
        self.changed = True


def sort_key(value: Any, bridge: BridgeRules = BridgeRules(),
             keys: dict[int, bytes] | None = None) -> bytes:
    """A byte string that orders the elements of an unordered array: equal for elements
    that compare equal under `bridge` (integral floats as ints, and with the bridge on,
    `true` as `1`, numeric strings as numbers, timestamps as UTC instants, `""` as null).
    `keys` holds the keys of bags already sorted (see `_bag`)."""
    if keys and type(value) is Bag and id(value) in keys:
        return keys[id(value)]
    form = _key_form(value, bridge, keys)
    try:
        return orjson.dumps(form, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _spelled(_key_form(value, bridge, None) if keys else form)


def _key_form(value: Any, bridge: BridgeRules, keys: dict[int, bytes] | None = None) -> Any:
    if type(value) is not dict and type(value) is not list and type(value) is not Bag:
        return _leaf_key(value, bridge)
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        holder, slot, node = stack.pop()
        if type(node) is dict:
            copy: Any = {}
            holder[slot] = copy
            for key, child in node.items():
                stack.append((copy, key, child))
        elif keys and type(node) is Bag and id(node) in keys:
            holder[slot] = orjson.Fragment(keys[id(node)])
        elif type(node) is list or type(node) is Bag:
            copy = [None] * len(node)
            holder[slot] = copy
            for index, child in enumerate(node):
                stack.append((copy, index, child))
        else:
            holder[slot] = _leaf_key(node, bridge)
    return root[0]


def _leaf_key(value: Any, bridge: BridgeRules) -> Any:
    kind = type(value)
    if kind is float:
        return _number_key(value)
    if kind is bool:
        return int(value) if bridge.bool_int else value
    if kind is str:
        if bridge.empty_null and value == "":
            return None
        if bridge.numeric_strings and is_numeric_text(value):
            number, _ = canonical(value, ValueKind.NUMERIC)
            return number if type(number) is int else _number_key(float(number))
        if bridge.timestamps:
            moment = parse_instant(value)
            if moment is not None:
                return moment.isoformat()
    return value


def _number_key(number: float) -> float | int:
    if number.is_integer() and abs(number) < _LARGEST_EXACT_FLOAT:
        return int(number)
    return number


_CLOSE_OBJECT, _CLOSE_ARRAY = object(), object()


def _spelled(form: Any) -> bytes:
    """An unambiguous encoding for forms orjson refuses (too deep, integers beyond 64
    bits)."""
    out: list[bytes] = []
    stack: list[Any] = [form]
    while stack:
        item = stack.pop()
        if item is _CLOSE_OBJECT:
            out.append(b"}")
        elif item is _CLOSE_ARRAY:
            out.append(b"]")
        elif type(item) is dict:
            out.append(b"{")
            stack.append(_CLOSE_OBJECT)
            for key in sorted(item, reverse=True):
                stack.append(item[key])
                stack.append(("key", key))
        elif type(item) is list or type(item) is Bag:
            out.append(b"[")
            stack.append(_CLOSE_ARRAY)
            stack.extend(reversed(item))
        elif type(item) is tuple:
            out.append(repr(item[1]).encode("utf-8", "surrogatepass") + b":")
        else:
            out.append(repr(item).encode("utf-8", "surrogatepass") + b",")
    return b"".join(out)
