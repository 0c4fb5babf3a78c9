"""Rows that overlapping inserts numbered in another order on each side, and the reply
arrays that list such rows in their own key order (pure: no I/O).

    Crossings.note(table, rows)            a group's new rows of a table whose keys crossed
    Crossings.reorder(primary, shadow)     -> (shadow document, moves) or None

Writes that overlapped on the primary are replayed concurrently on the shadow (the shadow
keeps the primary's concurrency), so each database numbers their new rows in the order
its own inserts ran: legacy 7 and 8 may be candidate 41 and 40. The rows are paired by
content and every id a reply shows is read through the pairs (`shadow.rows.ids`); but a
reply ordered by that key (`ORDER BY id DESC`: an inbox, a feed) lists the two rows in
another order on each side for good, often without an id to read, and no recheck can
settle it: the builds differ while no write runs.

`note` keeps, for one group of overlapping writes whose new rows of one table crossed
(the primary's key order and the shadow's disagree for some two of them), each of those
rows: its key on each side and keyed fingerprints of the text values that row alone among
them holds, per side (never the values themselves: this is health data). `reorder` looks
at every array of objects that has the same length in both replies. An element *stands
for* one of a group's rows when the text values it holds (at any depth) meet the marks of
that row and of no other row of the group, and no other element of the array stands for
that row. The shadow's elements are put back at the primary's places only when, for one
group's rows:
- the elements standing for them sit at the same places in both arrays (at least two),
- at those places the primary lists them in the order of its own keys and the shadow in
  the order of its own keys, in the same direction (both ascending or both descending),
- and those two orders differ: exactly the crossing the rows showed.
Nothing else moves. A candidate without `ORDER BY`, a wrong id, a row missing or one
element too many is left as it is and compared as usual.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shadow.compare.jsonpath import render_path
from shadow.rows.model import fold
from shadow.rows.sequences import is_int

CROSSED = "crossed keys"
"""The reason of a match whose shadow reply had elements put back in the primary's order,
and the source of each such move where a sample lists the ids read as the primary's."""

MAX_DEPTH = 8
"""How deep into an element text values are looked for, and arrays looked for in a reply."""


@dataclass(frozen=True, slots=True)
class Crossed:
    """One new row of a group whose keys crossed: its key on each side, and the marks
    (keyed fingerprints) of the text values only it holds among the group's rows, per
    side."""

    primary: int
    shadow: int
    primary_marks: frozenset[bytes]
    shadow_marks: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class Group:
    """The crossed rows of one table that one group of overlapping writes inserted, and
    the backend that was the primary then (its keys are `Crossed.primary`)."""

    table: str
    backend: str
    rows: tuple[Crossed, ...]

    def seen_from(self, primary: str) -> tuple[Crossed, ...]:
        """The rows with `primary`'s keys and marks first (swapped after a mode change)."""
        if primary == self.backend:
            return self.rows
        return tuple(Crossed(r.shadow, r.primary, r.shadow_marks, r.primary_marks)
                     for r in self.rows)


@dataclass(frozen=True, slots=True)
class Moved:
    """One element of a shadow array put back at the primary's place: the array's path,
    the table its rows belong to, the index the shadow gave it and the primary's."""

    path: str
    table: str
    shadow: int
    primary: int


NewRow = tuple[int, int, dict[str, Any] | None, dict[str, Any] | None]
"""(primary key, shadow key, primary image, shadow image) of one pair of new rows."""


def crossing(pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (primary, shadow) key pairs that some other pair crosses: one side orders the
    two before, the other after."""
    ordered = sorted(pairs)
    out: set[tuple[int, int]] = set()
    for i, (p1, s1) in enumerate(ordered):
        for p2, s2 in ordered[i + 1:]:
            if s1 > s2:
                out.update({(p1, s1), (p2, s2)})
    return out


class Crossings:
    """The crossed rows of the last `max_groups` groups, and the reorder they allow."""

    def __init__(self, max_groups: int = 1024, secret: bytes | None = None) -> None:
        if max_groups < 1:
            raise ValueError(f"max_groups must be positive: {max_groups}")
        self._secret = secret if secret is not None else os.urandom(16)
        self._groups: deque[Group] = deque(maxlen=max_groups)

    def __len__(self) -> int:
        return len(self._groups)

    def clear(self) -> None:
        self._groups.clear()

    def mark(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode(), key=self._secret, digest_size=8).digest()

    def note(self, table: str, backend: str, rows: Sequence[NewRow]) -> int:
        """Remember the rows of `rows` (one group's new rows of `table`, single integer
        keys, `backend` being the primary) that crossed; returns how many did."""
        crossed = crossing((p, s) for p, s, _, _ in rows if is_int(p) and is_int(s))
        if not crossed:
            return 0
        chosen = [row for row in rows if (row[0], row[1]) in crossed]
        primary = _own([self._marks(row[2]) for row in chosen])
        shadow = _own([self._marks(row[3]) for row in chosen])
        self._groups.append(Group(fold(table), backend, tuple(
            Crossed(row[0], row[1], pm, sm)
            for row, pm, sm in zip(chosen, primary, shadow, strict=True))))
        return len(chosen)

    def _marks(self, image: dict[str, Any] | None) -> set[bytes]:
        return {self.mark(v) for v in (image or {}).values() if isinstance(v, str) and v}

    def reorder(self, primary: Any, shadow: Any,
                backend: str) -> tuple[Any, tuple[Moved, ...]] | None:
        """The shadow's document with the elements that stand for crossed rows put back
        at the primary's places (`backend` holding the primary role), and what moved;
        None when nothing moved."""
        if not self._groups:
            return None
        moves: list[Moved] = []
        groups = [(g.table, g.seen_from(backend)) for g in self._groups]
        out = self._walk(primary, shadow, (), groups, moves)
        return (out, tuple(moves)) if moves else None

    def read(self, primary: bytes, shadow: bytes, backend: str) -> tuple[bytes, tuple[Moved, ...]]:
        """`reorder` on two JSON reply bodies: the shadow's body (the same bytes when
        nothing moved, or either is no JSON) and what moved."""
        if not self._groups or primary[:1] not in (b"{", b"[") or shadow[:1] not in (b"{", b"["):
            return shadow, ()
        try:
            found = self.reorder(orjson.loads(primary), orjson.loads(shadow), backend)
        except orjson.JSONDecodeError:
            return shadow, ()
        return (shadow, ()) if found is None else (orjson.dumps(found[0]), found[1])

    def _walk(self, primary: Any, shadow: Any, path: tuple, groups: list,
              moves: list[Moved]) -> Any:
        if len(path) > MAX_DEPTH:
            return shadow
        if isinstance(primary, dict) and isinstance(shadow, dict):
            return {k: self._walk(primary[k], v, (*path, k), groups, moves)
                    if k in primary else v for k, v in shadow.items()}
        if not (isinstance(primary, list) and isinstance(shadow, list)):
            return shadow
        if len(primary) == len(shadow) >= 2 and all(
                isinstance(e, dict) for e in (*primary, *shadow)):
            shadow = self._array(primary, shadow, render_path(path), groups, moves)
        return [self._walk(p, s, (*path, i), groups, moves)
                for i, (p, s) in enumerate(zip(primary, shadow, strict=False))] + shadow[
                    len(primary):]

    def _array(self, primary: list, shadow: list, path: str, groups: list,
               moves: list[Moved]) -> list:
        p_marks = [set(self._texts(e)) for e in primary]
        s_marks = [set(self._texts(e)) for e in shadow]
        out = list(shadow)
        for table, rows in groups:
            p_at = _stands(p_marks, [row.primary_marks for row in rows])
            s_at = _stands(s_marks, [row.shadow_marks for row in rows])
            if p_at is None or s_at is None or len(p_at) < 2:
                continue
            p_row = {at: r for r, at in p_at.items()}
            s_row = {at: r for r, at in s_at.items()}
            if p_at.keys() != s_at.keys() or p_row.keys() != s_row.keys():
                continue
            places = sorted(p_row)
            p_order = [p_row[place] for place in places]
            s_order = [s_row[place] for place in places]
            direction = _direction([rows[r].primary for r in p_order])
            if p_order == s_order or direction is None or (
                    direction != _direction([rows[r].shadow for r in s_order])):
                continue
            now, now_marks = list(out), list(s_marks)
            for r in p_order:
                now[p_at[r]], now_marks[p_at[r]] = out[s_at[r]], s_marks[s_at[r]]
                if s_at[r] != p_at[r]:
                    moves.append(Moved(path, table, s_at[r], p_at[r]))
            out, s_marks = now, now_marks
        return out

    def _texts(self, value: Any, depth: int = 0) -> Iterator[bytes]:
        if isinstance(value, str):
            if value:
                yield self.mark(value)
        elif depth < MAX_DEPTH and isinstance(value, dict | list):
            for item in value.values() if isinstance(value, dict) else value:
                yield from self._texts(item, depth + 1)


def _own(marks: list[set[bytes]]) -> list[frozenset[bytes]]:
    """Each row's marks that no other row of the list holds."""
    return [frozenset(m.difference(*(o for j, o in enumerate(marks) if j != i)))
            for i, m in enumerate(marks)]


def _stands(elements: list[set[bytes]], rows: list[frozenset[bytes]]) -> dict[int, int] | None:
    """Row index -> element index, for each row one element alone stands for; None when
    an element meets the marks of two rows (it could stand for either)."""
    found: dict[int, list[int]] = {}
    for at, marks in enumerate(elements):
        hits = [r for r, own in enumerate(rows) if own and not own.isdisjoint(marks)]
        if len(hits) > 1:
            return None
        if hits:
            found.setdefault(hits[0], []).append(at)
    return {r: ats[0] for r, ats in found.items() if len(ats) == 1}


def _direction(keys: list[int]) -> int | None:
    """1 when `keys` ascend, -1 when they descend, None otherwise."""
    if all(a < b for a, b in zip(keys, keys[1:], strict=False)):
        return 1
    if all(a > b for a, b in zip(keys, keys[1:], strict=False)):
        return -1
    return None
