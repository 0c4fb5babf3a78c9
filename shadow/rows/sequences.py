"""Where each side's id sequence stands, and which new keys break it (pure: no I/O).

    surrogate_key(info, rows)                 the table's surrogate key column, or None
    follow(anchor, pairs, missing, extra)     -> (unexpected keys, new anchor)

A table whose key is one integer column that points at no other table has a *surrogate
key*: each database's sequence chooses it. The two sequences move together except where
something happened on one side only, and the *anchor* (last primary id, last shadow id)
says where they stand: the next pair of new rows is expected at the anchor's offset.

`follow` walks the new keys of one exchange or group in key order, not write order, so
that overlapping writes that took their ids in another order on each side break nothing:

- a pair (p, s) is expected at s = p + offset; otherwise s is *unexpected* (a burnt
  sequence value: one difference), and the anchor moves to (p, s) either way. The key
  said to be expected is that offset applied to the primary key of the row the shadow
  gave s (its content pair): where the group's rows crossed, that row's primary key is
  not p, and the offset is what a later read of both sequences is held against (see
  `shadow.writes.reconcile`);
- a row inserted on the primary only (missing on the shadow) used a primary id and no
  shadow id; a row inserted on the shadow only (extra) the reverse. Both move the anchor
  and are not key differences themselves: the missing or extra row is the difference,
  and the pairs after it are expected at the new offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shadow.rows.model import TableInfo, fold

Anchor = tuple[int, int]


def is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def surrogate_key(info: TableInfo | None, keys: Iterable[tuple]) -> str | None:
    """The name of `info`'s surrogate key column when every key in `keys` is one int,
    else None (a natural or composite key, a foreign key, or an unknown table)."""
    if info is None or len(info.key) != 1:
        return None
    name = info.key[0]
    if fold(name) in {fold(c) for c in info.references}:
        return None
    if all(len(key) == 1 and is_int(key[0]) for key in keys):
        return name
    return None


KEY_DETAIL = "key: the shadow was expected to use "
"""How the detail of a sequence-key difference begins; the expected key follows."""


def key_detail(expected: Any) -> str:
    """The detail of a key difference whose shadow key was expected to be `expected`."""
    return f"{KEY_DETAIL}{expected!r}"


def expected_key(detail: str) -> int | None:
    """The integer key a key difference's detail says was expected (whatever note was
    appended after a `;`), or None for any other detail."""
    if not detail.startswith(KEY_DETAIL):
        return None
    try:
        return int(detail[len(KEY_DETAIL):].split(";", 1)[0])
    except ValueError:
        return None


def as_anchor(pair: tuple[tuple, tuple] | None) -> Anchor | None:
    """A key map anchor as two ints, or None when it is not a pair of single int keys."""
    if pair is None:
        return None
    primary, shadow = pair
    if len(primary) == 1 == len(shadow) and is_int(primary[0]) and is_int(shadow[0]):
        return primary[0], shadow[0]
    return None


def follow(anchor: Anchor | None, pairs: Sequence[Anchor], missing: Sequence[int],
           extra: Sequence[int]) -> tuple[list[tuple[int, int]], Anchor | None]:
    """(unexpected, anchor): the shadow keys of `pairs` that break the sequence, each with
    the key its own row was expected to have there (its primary key plus the offset the
    sequences were expected at), and the anchor after this exchange: the highest key each
    side has reached (a group that took its keys before another group concluded first
    leaves the anchor where that one put it). With no anchor yet the two sequences are
    taken to be in step."""
    twin = {s: p for p, s in pairs}
    primaries = sorted(p for p, _ in pairs)
    shadows = sorted(s for _, s in pairs)
    missing, extra = sorted(missing), sorted(extra)
    start = anchor
    m = e = 0
    unexpected = []
    for p, s in zip(primaries, shadows, strict=True):
        while m < len(missing) and missing[m] < p:
            anchor = _primary_only(anchor, missing[m])
            m += 1
        while e < len(extra) and extra[e] < s:
            anchor = _shadow_only(anchor, extra[e])
            e += 1
        expected = p if anchor is None else p + anchor[1] - anchor[0]
        if s != expected:
            unexpected.append((s, twin[s] + expected - p))
        anchor = (p, s)
    for key in missing[m:]:
        anchor = _primary_only(anchor, key)
    for key in extra[e:]:
        anchor = _shadow_only(anchor, key)
    if start is not None and anchor is not None:
        anchor = (max(start[0], anchor[0]), max(start[1], anchor[1]))
    return unexpected, anchor


def _primary_only(anchor: Anchor | None, key: int) -> Anchor:
    return (key, key - 1) if anchor is None else (key, anchor[1])


def _shadow_only(anchor: Anchor | None, key: int) -> Anchor:
    return (key - 1, key) if anchor is None else (anchor[0], key)
