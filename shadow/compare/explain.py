"""Explain two JSON documents already known to differ: the only place DeepDiff is used.

The Walker (see `walk`) decides whether two documents differ and lists where. For object
members and for arrays of equal length its list is already what DeepDiff would say (the
same paths, values and type changes) at a small fraction of the cost, so it is kept as
it is. Arrays whose lengths differ are where DeepDiff helps: its sequence matcher reads
an element inserted at the front of a list as one insertion, not as a change at every
later index. So each such array (the Walker reports it as one difference) is handed to
DeepDiff, alone, and DeepDiff's account replaces the Walker's.

Inside DeepDiff the Walker's rules still hold: a rule-aware operator decides every leaf
and every unordered array, and booleans are carried as b'true' / b'false' so that the
sequence matcher cannot call `true` equal to `1`. When an array is too large or too deep
for DeepDiff to be quick, when DeepDiff fails, or when it finds nothing, the Walker
compares that array by position instead. `explain` never raises.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deepdiff import DeepDiff

from shadow.compare.jsonpath import Path, render_path
from shadow.compare.prepare import Bag
from shadow.compare.walk import (
    MISSING_IN_PRIMARY,
    MISSING_IN_SHADOW,
    Walker,
    WalkResult,
    difference,
    path_order,
)
from shadow.verdict import Difference

MAX_NODES = 2_000
"""Arrays with more nodes (both sides together) are compared by position, not DeepDiff."""

MAX_DEPTH = 48
"""Arrays nested deeper are compared by position (DeepDiff recurses)."""

_FLAGS = {True: b"true", False: b"false"}
_NODES = (dict, list, Bag)
_ADDED = frozenset({"dictionary_item_added", "iterable_item_added"})
_REMOVED = frozenset({"dictionary_item_removed", "iterable_item_removed"})


def explain(
    primary: Any,
    shadow: Any,
    *,
    walker: Walker,
    found: WalkResult | None = None,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> list[Difference]:
    """The differences between two prepared documents, in document order, at most
    `walker.cap` of them; when there were more, the last one's detail says so.

    `found` is `walker.compare(primary, shadow, split_resized=True)` when the caller
    already has it.
    """
    if found is None:
        found = walker.compare(primary, shadow, split_resized=True)
    entries: list[tuple[Path, Difference]] = []
    more = found.more
    for path, diff in found.entries:
        if path in found.resized:
            inside = _aligned(_at(primary, path), _at(shadow, path), path, walker, max_nodes, max_depth)
            entries.extend(inside.entries)
            more = more or inside.more
        else:
            entries.append((path, diff))
    entries.sort(key=lambda item: path_order(item[0]))
    more = more or len(entries) > walker.cap
    return _capped([d for _, d in entries[: walker.cap]], more, walker.cap)


def _aligned(primary: Any, shadow: Any, path: Path, walker: Walker, max_nodes: int, max_depth: int) -> WalkResult:
    """The differences inside two arrays of different lengths at `path`."""
    if _size(primary, max_depth) + _size(shadow, max_depth) <= max_nodes:
        try:
            described = _described(primary, shadow, path, walker)
        except Exception:  # DeepDiff's own failures (RecursionError included) must not cost the verdict
            described = []
        if described:
            return WalkResult(described)
    return walker.compare(primary, shadow, at=path)


class _RuleAware:
    """A DeepDiff operator that lets the Walker decide leaves and unordered arrays."""

    def __init__(self, walker: Walker, primary: Any, shadow: Any) -> None:
        self.walker = walker
        self.primary = primary
        self.shadow = shadow
        self.bags: dict[tuple[Path, Path], None] = {}

    def match(self, level: Any) -> bool:
        t1, t2 = level.t1, level.t2
        if type(t1) is Bag and type(t2) is Bag:
            return True
        return type(t1) not in _NODES and type(t2) not in _NODES

    def give_up_diffing(self, level: Any, diff_instance: Any) -> bool:
        t1, t2 = level.t1, level.t2
        if type(t1) is Bag:
            left = tuple(level.path(output_format="list"))
            right = tuple(level.path(output_format="list", use_t2=True))
            same, _ = self.walker.equal(_at(self.primary, left), _at(self.shadow, right))
            if not same:
                self.bags[left, right] = None
            return True
        same, _ = self.walker.leaves_equal(_unflagged(t1), _unflagged(t2))
        return same

    def normalize_value_for_hashing(self, parent: Any, obj: Any) -> Any:
        return obj


def _described(primary: Any, shadow: Any, at: Path, walker: Walker) -> list[tuple[Path, Difference]]:
    operator = _RuleAware(walker, primary, shadow)
    tree = DeepDiff(
        _flagged(primary),
        _flagged(shadow),
        view="tree",
        custom_operators=[operator],
        threshold_to_diff_deeper=0,
        cache_size=0,
        log_frequency_in_sec=0,
    )
    out: list[tuple[Path, Difference]] = []
    for report_type, levels in tree.items():
        for level in levels:
            left = tuple(level.path(output_format="list"))
            right = tuple(level.path(output_format="list", use_t2=True))
            if report_type in _ADDED:
                out.append((at + right, difference(at + right, None, _at(shadow, right), MISSING_IN_PRIMARY)))
                continue
            if report_type in _REMOVED:
                out.append((at + left, difference(at + left, _at(primary, left), None, MISSING_IN_SHADOW)))
                continue
            detail = None
            if report_type == "iterable_item_moved":
                detail = f"moved to {render_path(at + right)}"
            elif report_type not in ("values_changed", "type_changes"):
                detail = report_type.replace("_", " ")
            out.append((at + left, difference(at + left, _at(primary, left), _at(shadow, right), detail)))
    for left, right in operator.bags:
        out.extend(walker.bag_differences(at + left, _at(primary, left), _at(shadow, right)))
    return out


def _capped(differences: list[Difference], more: bool, cap: int) -> list[Difference]:
    if len(differences) > cap:
        differences, more = differences[:cap], True
    if more and differences:
        last = differences[-1]
        differences[-1] = replace(
            last, detail=f"{last.detail}; more differences not shown (at most {cap} per exchange)"
        )
    return differences


def _size(doc: Any, max_depth: int) -> int:
    """Node count of `doc`, a long string counting as one node per 256 characters, or a
    number larger than any budget when `doc` is nested deeper than `max_depth`."""
    count = 0
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if type(node) is str:
            count += len(node) >> 8
            continue
        if type(node) is dict:
            children = node.values()
        elif type(node) is list or type(node) is Bag:
            children = node
        else:
            continue
        if depth >= max_depth:
            return 1 << 62
        stack.extend((child, depth + 1) for child in children)
    return count


def _flagged(doc: Any) -> Any:
    """A copy of `doc` with booleans as b'true' / b'false' (Bags stay Bags)."""
    if type(doc) is bool:
        return _FLAGS[doc]
    if type(doc) not in _NODES:
        return doc
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, doc)]
    while stack:
        holder, slot, node = stack.pop()
        kind = type(node)
        if kind is dict:
            copy: Any = {}
            holder[slot] = copy
            for key, child in node.items():
                copy[key] = None
                stack.append((copy, key, child))
        elif kind is list or kind is Bag:
            copy = kind([None] * len(node))
            holder[slot] = copy
            for index, child in enumerate(node):
                stack.append((copy, index, child))
        elif kind is bool:
            holder[slot] = _FLAGS[node]
        else:
            holder[slot] = node
    return root[0]


def _unflagged(value: Any) -> Any:
    if type(value) is bytes:
        return value == b"true"
    return value


def _at(doc: Any, path: Path) -> Any:
    node = doc
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node

