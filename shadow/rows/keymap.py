"""Which shadow row is which primary row: the key map.

When both backends insert a row for the same exchange, the keys they chose may differ (a
failed insert burns a PostgreSQL sequence value; a SQLite rowid is reused). The row diff
pairs such inserts and records the pair here, per table; later changes to the row are
looked up through the map. The map is bounded: past `max_pairs` the least recently used
pair is forgotten. `pairs()` / `load()` let a state store persist it across restarts.

Besides the pairs, the map remembers per table where the two id sequences stand (the
*anchor*: the pair learnt last, or the ids a row inserted on one side only moved it to,
see `shadow.rows.sequences`). Its key offset (shadow id minus primary id) is what the next
insert is expected to follow, so one burnt sequence value, or one extra row, shows as one
difference and not as a shift in every later row. `anchors()` / `load_anchors()` persist it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from shadow.rows.model import fold

Key = tuple[Any, ...]
Pair = tuple[str, Key, Key]


def freeze(value: Any) -> Any:
    """`value` made hashable: lists become tuples, dicts sorted tuples of items."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


class KeyMap:
    """A bounded bidirectional map of (table, primary key) <-> (table, shadow key).

    The map is one-to-one: learning a pair replaces any pair that shared either key.
    Table names are matched case-insensitively. Keys are tuples of column values.
    Raises ValueError when `max_pairs` is not positive.
    """

    def __init__(self, max_pairs: int = 100_000) -> None:
        if max_pairs < 1:
            raise ValueError(f"max_pairs must be positive: {max_pairs}")
        self.max_pairs = max_pairs
        self._forward: OrderedDict[tuple[str, Key], Key] = OrderedDict()
        self._reverse: dict[tuple[str, Key], Key] = {}
        self._anchors: dict[str, tuple[Key, Key]] = {}

    def __len__(self) -> int:
        return len(self._forward)

    def learn(self, table: str, primary: Key, shadow: Key, *, anchor: bool = True) -> None:
        """Record that `primary` on the primary side is `shadow` on the shadow side, and
        (unless `anchor` is False) that the table's sequences stand at this pair."""
        table, primary, shadow = fold(table), freeze(primary), freeze(shadow)
        old_shadow = self._forward.pop((table, primary), None)
        if old_shadow is not None:
            self._reverse.pop((table, old_shadow), None)
        old_primary = self._reverse.pop((table, shadow), None)
        if old_primary is not None:
            self._forward.pop((table, old_primary), None)
        self._forward[(table, primary)] = shadow
        self._reverse[(table, shadow)] = primary
        if anchor:
            self._anchors[table] = (primary, shadow)
        while len(self._forward) > self.max_pairs:
            (old_table, _old_key), old_value = self._forward.popitem(last=False)
            self._reverse.pop((old_table, old_value), None)

    def shadow_key(self, table: str, primary: Key) -> Key | None:
        """The shadow key paired with `primary`, or None; marks the pair as used."""
        entry = (fold(table), freeze(primary))
        found = self._forward.get(entry)
        if found is not None:
            self._forward.move_to_end(entry)
        return found

    def primary_key(self, table: str, shadow: Key) -> Key | None:
        """The primary key paired with `shadow`, or None."""
        return self._reverse.get((fold(table), freeze(shadow)))

    def anchor(self, table: str) -> tuple[Key, Key] | None:
        """The (primary, shadow) pair learnt last for `table`, or None."""
        return self._anchors.get(fold(table))

    def set_anchor(self, table: str, primary: Key, shadow: Key) -> None:
        """Record that the sequences of `table` stand at `primary` and `shadow`."""
        self._anchors[fold(table)] = (freeze(primary), freeze(shadow))

    def anchors(self) -> list[Pair]:
        """Every table's anchor as (table, primary, shadow)."""
        return [(t, p, s) for t, (p, s) in self._anchors.items()]

    def load_anchors(self, anchors: Iterable[Pair]) -> None:
        """Restore anchors saved by `anchors()` (after `load`, which sets its own)."""
        for table, primary, shadow in anchors:
            self.set_anchor(table, tuple(primary), tuple(shadow))

    def pairs(self) -> list[Pair]:
        """Every pair, least recently used first and each table's anchor last when it is a
        pair, so that `load(pairs())` rebuilds the same map, recency and those anchors
        included (`load_anchors(anchors())` restores the others)."""
        anchors = {(t, p, s) for t, (p, s) in self._anchors.items()
                   if self._forward.get((t, p)) == s}
        ordered = [(t, p, s) for (t, p), s in self._forward.items() if (t, p, s) not in anchors]
        return ordered + [pair for pair in self.anchors() if pair in anchors]

    def load(self, pairs: Iterable[Pair]) -> None:
        """Learn `pairs` in order (as returned by `pairs()`, or read from a store)."""
        for table, primary, shadow in pairs:
            self.learn(table, tuple(primary), tuple(shadow))

    def clear(self) -> None:
        """Forget everything (after an operator resynchronised the shadow)."""
        self._forward.clear()
        self._reverse.clear()
        self._anchors.clear()
