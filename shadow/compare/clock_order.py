"""An array that each build sorted by its own clock (pure: no I/O).

A list sorted by a timestamp kept to the second (`ORDER BY earned_at DESC, badge`) puts
two entries stamped in the same second in the order of the tie-breaker. The two builds
stamp with their own "now", and the shadow replays each write a moment later: two writes
the primary stamped within one second may fall on either side of a second boundary on
the shadow (or the other way round). Each build then lists them correctly, in other
orders, for good: the stamps compare equal by meaning (`shadow.compare.moments`), the
order does not.

`clock_order` accepts such a pair of arrays, and nothing wider:

- both arrays hold the same elements, paired one to one by the caller's equality (which
  compares timestamps by meaning);
- some member holds an instant in every element on both sides (`moments.instant`), and
  each side's array is sorted by it, in the same direction on both sides;
- every pair of elements the two sides put in other orders has equal instants at that
  member on one side and different ones on the other: one build's tie-breaker decided,
  the other build's clock did.

A candidate that breaks ties another way (equal stamps on both sides, another order),
sorts the other way, or lists by something else still differs. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shadow.compare.moments import instant

MAX_ELEMENTS = 200
"""Longer arrays are not paired (n² element comparisons) nor searched for stamps: their
order is compared as is."""


def clock_order(primary: Sequence[Any], shadow: Sequence[Any],
                same: Callable[[Any, Any], bool]) -> bool:
    """True when `shadow` is `primary` in another order that only the two builds' clocks
    explain (see the module doc); `same(a, b)` says whether two elements are equal."""
    if not 2 <= len(primary) == len(shadow) <= MAX_ELEMENTS:
        return False
    members = stamped_members(primary, shadow)
    if not members:
        return False
    partner = _pairing(primary, shadow, same)
    if partner is None:
        return False
    return any(_explains(primary, shadow, partner, member) for member in members)


def stamped_members(primary: Sequence[Any], shadow: Sequence[Any]) -> list[str]:
    """The members that hold an instant in every element of both arrays (objects)."""
    if not primary or len(primary) > MAX_ELEMENTS or len(shadow) > MAX_ELEMENTS:
        return []
    if not all(type(e) is dict for e in primary) or not all(type(e) is dict for e in shadow):
        return []
    first = primary[0]
    return [key for key in first if instant(first[key]) is not None
            and all(instant(e.get(key)) is not None for side in (primary, shadow) for e in side)]


def _pairing(primary: Sequence[Any], shadow: Sequence[Any],
             same: Callable[[Any, Any], bool]) -> list[int] | None:
    """For each primary index, the shadow index of its equal element (the first one left),
    or None when some element has no partner."""
    left = list(range(len(shadow)))
    partner: list[int] = []
    for element in primary:
        for position, j in enumerate(left):
            if same(element, shadow[j]):
                partner.append(j)
                del left[position]
                break
        else:
            return None
    return partner


def _explains(primary: Sequence[Any], shadow: Sequence[Any], partner: list[int],
              member: str) -> bool:
    """True when both sides are sorted by `member` the same way and every pair they order
    differently ties at `member` on exactly one side."""
    mine = [instant(e[member]) for e in primary]
    theirs = [instant(e[member]) for e in shadow]
    directions = {_direction(mine), _direction(theirs)} - {0}
    if None in directions or len(directions) > 1:
        return False
    paired = [theirs[j] for j in partner]  # the shadow's stamp of each primary element
    for i in range(len(mine)):
        for k in range(i + 1, len(mine)):
            if partner[i] > partner[k] and (mine[i] == mine[k]) == (paired[i] == paired[k]):
                return False
    return True


def _direction(stamps: list[float | None]) -> int | None:
    """1 when non-decreasing, -1 when non-increasing (not all equal), 0 when all equal,
    None when neither: not sorted by these stamps."""
    steps = {(b > a) - (b < a) for a, b in zip(stamps, stamps[1:])}  # type: ignore[operator]
    steps.discard(0)
    if len(steps) > 1:
        return None
    return steps.pop() if steps else 0
