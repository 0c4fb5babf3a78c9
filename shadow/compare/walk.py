"""Rule-aware comparison of two prepared JSON documents.

The `Walker` decides whether two documents (see `prepare`) are equal under the reply
rules, and if not, where: it visits both documents side by side with an explicit stack
(never recursion), compares leaves on their JSON meaning, and lists the differences it
meets, up to a cap. Leaves compare strictly by default:

    true vs 1      different (a JavaScript client sees `=== 1` fail) unless bridge.bool_int
    15 vs 15.0     equal: one JSON number (counted as normalised)
    "4.5" vs 4.5   different unless bridge.numeric_strings
    "" vs null     different unless bridge.empty_null
    timestamps     equal when they name the same instant (bridge.timestamps), or lie within
                   time_tolerance and are written the same way, or when the shadow's is
                   later by no more than the replay lag (see shadow.compare.moments)

An array of objects that each build sorted by its own clock (a tie within one second on
one side, a second boundary between the same two stamps on the other) is equal when its
elements are (see shadow.compare.clock_order); it counts as normalised.

Arrays that became a `Bag` compare as multisets: each element is paired with the first
equal element left on the other side (unordered arrays nested inside unordered arrays are
paired by position after sorting). What this module reports is the authoritative answer;
`explain` only tries to describe it better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadow.compare.bridge import ValueKind, is_numeric_text, values_equal
from shadow.compare.clock_order import clock_order, stamped
from shadow.compare.jsonpath import Path, render_path
from shadow.compare.moments import stamped_later
from shadow.compare.prepare import Bag, sort_key
from shadow.compare.rules import ReplyRules
from shadow.verdict import Difference, Kind

MAX_PREVIEW = 500
"""Strings and encoded containers longer than this are cut in Difference values."""

MATCH_BUDGET = 40_000
"""Above this many element pairs, unordered arrays are matched by exact sort key only."""

MISSING_IN_SHADOW = "missing in shadow"
MISSING_IN_PRIMARY = "missing in primary"
CHANGED = "changed"
TYPE_CHANGED = "type changed: "
"""The detail of a body difference whose two values have other JSON types, before
`number -> string`."""
_BAG_NOTE = " (unordered array)"
_DIGITS = str.maketrans("0123456789", "0000000000")
_CONTAINERS = (dict, list, Bag)


@dataclass(slots=True)
class WalkResult:
    """What a walk found. `entries` pairs each difference with its path, in document
    order, at most the walker's cap of them; `more` is True when the walk stopped at the
    cap with differences left unlisted. `resized` holds the paths of arrays whose lengths
    differ and that were reported as one difference (see `Walker.compare`).
    `normalised` counts the leaves found equal only thanks to the bridge or a tolerance."""

    entries: list[tuple[Path, Difference]] = field(default_factory=list)
    normalised: int = 0
    more: bool = False
    resized: set[Path] = field(default_factory=set)

    @property
    def equal(self) -> bool:
        return not self.entries

    @property
    def differences(self) -> list[Difference]:
        return [d for _, d in self.entries]


class Walker:
    """Compares documents under one set of reply rules."""

    __slots__ = ("cap", "_bridge", "_numeric_tolerance", "_time_tolerance", "_times", "_lag")

    def __init__(self, rules: ReplyRules, *, cap: int = 50) -> None:
        self.cap = cap
        self._bridge = rules.bridge
        self._numeric_tolerance = rules.numeric_tolerance
        self._time_tolerance = rules.time_tolerance
        self._lag = rules.replay_lag
        self._times = rules.bridge.timestamps or rules.time_tolerance > 0 or self._lag > 0

    def compare(self, primary: Any, shadow: Any, *, at: Path = (), split_resized: bool = False) -> WalkResult:
        """Walk both documents, found at path `at`; stop after `cap` differences.

        Arrays of different lengths are compared by position, unless `split_resized`:
        then each is reported as a single difference at its own path and listed in
        `resized`, for `explain` to align.
        """
        found: list[tuple[Path, Difference]] = []
        resized: list[Path] | None = [] if split_resized else None
        count, normalised = self._run(
            primary, shadow, found, self.cap + 1, nested=False, root=_link(at), resized=resized
        )
        found.sort(key=lambda item: path_order(item[0]))
        return WalkResult(found[: self.cap], normalised, count > self.cap, set(resized or ()))

    def equal(self, primary: Any, shadow: Any) -> tuple[bool, int]:
        """(equal, normalised leaves) without listing differences."""
        count, normalised = self._run(primary, shadow, None, 1, nested=False)
        return count == 0, normalised

    def leaves_equal(self, a: Any, b: Any) -> tuple[bool, bool]:
        """(equal, normalised) for two JSON scalars under the rules (see the module doc)."""
        ta, tb = type(a), type(b)
        if ta is tb and a == b:
            return True, False
        bridge = self._bridge
        num_a = ta is int or ta is float
        num_b = tb is int or tb is float
        if num_a and num_b:
            return values_equal(a, b, ValueKind.NUMERIC, tolerance=self._numeric_tolerance)
        if ta is str and tb is str:
            if self._times and (bridge.timestamps or a.translate(_DIGITS) == b.translate(_DIGITS)):
                same, normalised = values_equal(a, b, ValueKind.TIMESTAMP, tolerance=self._time_tolerance)
                if same:
                    return True, normalised
                if self._lag > 0 and stamped_later(a, b, self._lag, self._time_tolerance):
                    return True, True
            if bridge.numeric_strings and is_numeric_text(a) and is_numeric_text(b):
                return values_equal(a, b, ValueKind.NUMERIC, tolerance=self._numeric_tolerance)
            return False, False
        if bridge.bool_int and ((ta is bool and num_b) or (tb is bool and num_a)):
            return values_equal(a, b, ValueKind.BOOL)
        if bridge.numeric_strings and (
            (num_a and tb is str and is_numeric_text(b)) or (num_b and ta is str and is_numeric_text(a))
        ):
            return values_equal(a, b, ValueKind.NUMERIC, tolerance=self._numeric_tolerance)
        if bridge.empty_null and ((a is None and b == "" and tb is str) or (b is None and a == "" and ta is str)):
            return True, True
        return False, False

    def bag_differences(
        self, path: Path, primary: Sequence[Any], shadow: Sequence[Any]
    ) -> list[tuple[Path, Difference]]:
        """(path, difference) for each element of the two unordered arrays at `path`
        that found no equal partner."""
        found: list[tuple[Path, Difference]] = []
        self._bag(path, primary, shadow, found, self.cap + 1)
        return found[: self.cap]

    def _run(
        self,
        a: Any,
        b: Any,
        sink: list | None,
        limit: int,
        *,
        nested: bool,
        root: Any = None,
        resized: list[Path] | None = None,
        orders: bool = True,
    ) -> tuple[int, int]:
        found = normalised = 0
        stack: list[tuple[Any, Any, Any]] = [(root, a, b)]
        while stack and found < limit:
            link, x, y = stack.pop()
            tx, ty = type(x), type(y)
            if tx is dict and ty is dict:
                for key in reversed(y):
                    if key not in x:
                        found += self._report(sink, (link, key), None, y[key], MISSING_IN_PRIMARY)
                for key in reversed(x):
                    if key in y:
                        stack.append(((link, key), x[key], y[key]))
                    else:
                        found += self._report(sink, (link, key), x[key], None, MISSING_IN_SHADOW)
            elif (tx is list or tx is Bag) and (ty is list or ty is Bag):
                if (tx is Bag or ty is Bag) and not nested:
                    more, norm = self._bag(_path(link), x, y, sink, limit - found)
                    found += more
                    normalised += norm
                    continue
                equal = 0  # leading elements already found equal in place
                if (orders and self._times and tx is list and ty is list
                        and len(x) == len(y) > 1 and stamped(x[0])):
                    settled, equal, norm = self._clock_ordered(x, y, nested)
                    normalised += norm
                    if settled:
                        continue
                if resized is not None and len(x) != len(y):
                    resized.append(_path(link))
                    found += self._report(sink, link, x, y, f"array of {len(x)} vs {len(y)} elements")
                    continue
                shared = min(len(x), len(y))
                for index in range(len(y) - 1, shared - 1, -1):
                    found += self._report(sink, (link, index), None, y[index], MISSING_IN_PRIMARY)
                for index in range(len(x) - 1, shared - 1, -1):
                    found += self._report(sink, (link, index), x[index], None, MISSING_IN_SHADOW)
                for index in range(shared - 1, equal - 1, -1):
                    stack.append(((link, index), x[index], y[index]))
            elif tx in _CONTAINERS or ty in _CONTAINERS:
                found += self._report(sink, link, x, y, None)
            else:
                same, norm = self.leaves_equal(x, y)
                if same:
                    normalised += norm
                else:
                    found += self._report(sink, link, x, y, None)
        return found, normalised

    def _clock_ordered(self, xs: list[Any], ys: list[Any], nested: bool) -> tuple[bool, int, int]:
        """(settled, equal, normalised) for two arrays of timestamped objects of one
        length: settled when they are equal, element by element or in an order only the
        two builds' clocks explain (see `shadow.compare.clock_order`); else the first
        `equal` elements were found equal in place, with `normalised` leaves, and need no
        second walk. Elements are compared with the arrays inside them by position (one
        level of recursion at most); the caller's own walk gives those arrays this chance
        in turn."""

        def same(a: Any, b: Any) -> bool:
            return not self._run(a, b, None, 1, nested=nested, orders=False)[0]

        normalised = 0
        for start, (x, y) in enumerate(zip(xs, ys)):
            count, norm = self._run(x, y, None, 1, nested=nested, orders=False)
            if count:
                if clock_order(xs, ys, same, start=start):
                    return True, 0, 1
                return False, start, normalised
            normalised += norm
        return True, 0, normalised

    def _bag(self, path: Path, xs: Sequence[Any], ys: Sequence[Any], sink: list | None, limit: int) -> tuple[int, int]:
        if len(xs) == len(ys):
            normalised = 0
            for x, y in zip(xs, ys):
                count, norm = self._run(x, y, None, 1, nested=True)
                if count:
                    break
                normalised += norm
            else:
                return 0, normalised
        unmatched = list(range(len(ys)))
        lonely: list[Any] = []
        normalised = 0
        if len(xs) * len(ys) <= MATCH_BUDGET:
            for x in xs:
                for position, j in enumerate(unmatched):
                    count, norm = self._run(x, ys[j], None, 1, nested=True)
                    if not count:
                        normalised += norm
                        del unmatched[position]
                        break
                else:
                    lonely.append(x)
        else:
            by_key: dict[bytes, list[int]] = {}
            for j in reversed(unmatched):
                by_key.setdefault(sort_key(ys[j], self._bridge), []).append(j)
            for x in xs:
                partners = by_key.get(sort_key(x, self._bridge))
                if partners:
                    partners.pop()
                else:
                    lonely.append(x)
            unmatched = sorted(j for partners in by_key.values() for j in partners)
        found = 0
        for x in lonely:
            if found >= limit:
                break
            found += self._report(sink, _link(path), x, None, MISSING_IN_SHADOW + _BAG_NOTE)
        for j in unmatched:
            if found >= limit:
                break
            found += self._report(sink, _link(path), None, ys[j], MISSING_IN_PRIMARY + _BAG_NOTE)
        return found, normalised

    def _report(self, sink: list | None, link: Any, x: Any, y: Any, detail: str | None) -> int:
        if sink is not None and len(sink) <= self.cap:
            path = _path(link)
            sink.append((path, difference(path, x, y, detail)))
        return 1


def difference(path: Path, primary: Any, shadow: Any, detail: str | None = None) -> Difference:
    """A body Difference at `path`; the detail defaults to 'changed' or 'type changed:
    number -> string'. Long values are cut (see `preview`)."""
    if detail is None:
        a, b = json_type(primary), json_type(shadow)
        detail = CHANGED if a == b else f"{TYPE_CHANGED}{a} -> {b}"
    return Difference(Kind.BODY, render_path(path), preview(primary), preview(shadow), detail)


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value: null, boolean, number, string, object, array."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "boolean"
    if kind is int or kind is float:
        return "number"
    if kind is str:
        return "string"
    if kind is dict:
        return "object"
    return "array"


def preview(value: Any) -> Any:
    """`value` as shown in a Difference: plain JSON data; strings and containers whose
    JSON text is longer than MAX_PREVIEW become that text cut short, ending in '…'."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_PREVIEW else value[:MAX_PREVIEW] + "…"
    if kind not in _CONTAINERS:
        return value
    try:
        text = orjson.dumps(value)
    except TypeError:
        return "{…}" if kind is dict else "[…]"
    if len(text) <= MAX_PREVIEW:
        return orjson.loads(text)
    return text[:MAX_PREVIEW].decode("utf-8", "ignore") + "…"


def path_order(path: Path) -> tuple[tuple[int, int | str], ...]:
    """A sort key putting paths in document-like order (indices numerically)."""
    return tuple((0, step) if type(step) is int else (1, step) for step in path)


def _link(path: Path) -> Any:
    link = None
    for step in path:
        link = (link, step)
    return link


def _path(link: Any) -> Path:
    steps: list[Any] = []
    while link is not None:
        link, step = link
        steps.append(step)
    steps.reverse()
    return tuple(steps)
