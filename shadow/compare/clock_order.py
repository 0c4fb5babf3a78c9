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

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shadow.compare.moments import instant

MAX_ELEMENTS = 100
"""Longer arrays are not paired nor searched for stamps: their order is compared as is.
Pairing, reading the stamps and the pairwise check cost a list of this size in another
order about a millisecond more on this machine (`python -m bench.clock_order_cost`)."""


def clock_order(primary: Sequence[Any], shadow: Sequence[Any],
                same: Callable[[Any, Any], bool], *, start: int = 0) -> bool:
    """True when `shadow` is `primary` in another order that only the two builds' clocks
    explain (see the module doc); `same(a, b)` says whether two elements are equal, and
    the first `start` elements are known equal at the same places."""
    if not 2 <= len(primary) == len(shadow) <= MAX_ELEMENTS:
        return False
    partner = _pairing(primary, shadow, same, start)
    if partner is None:
        return False
    return any(_explains(mine, theirs, partner) for mine, theirs in _stamps(primary, shadow))


def stamped(element: Any) -> bool:
    """True when `element` is an object with a member that holds an instant: the cheap
    test of whether an array of such elements may have been sorted by a clock."""
    return type(element) is dict and any(instant(v) is not None for v in element.values())


def _stamps(primary: Sequence[Any],
            shadow: Sequence[Any]) -> Iterator[tuple[list[float], list[float]]]:
    """(the primary's instants, the shadow's) for each member that holds an
    instant in every element of both arrays, each list in its own array's order."""
    if not all(type(e) is dict for e in primary) or not all(type(e) is dict for e in shadow):
        return
    for member, value in primary[0].items():
        if instant(value) is None:
            continue
        mine = [instant(e.get(member)) for e in primary]
        theirs = [instant(e.get(member)) for e in shadow]
        if None not in mine and None not in theirs:
            yield mine, theirs  # type: ignore[misc]


def _pairing(primary: Sequence[Any], shadow: Sequence[Any],
             same: Callable[[Any, Any], bool], start: int) -> list[int] | None:
    """For each primary index, the shadow index of an equal element, or None as soon as
    some element has none. Elements with the same `_hint` are tried first, so a list in
    another order is paired in about n comparisons rather than n²; the hint only orders
    the search (values the rules call equal may spell differently), never decides."""
    partner = list(range(start))
    taken = [False] * len(shadow)
    hinted: dict[tuple, list[int]] = {}
    for j in range(start, len(shadow)):
        hinted.setdefault(_hint(shadow[j]), []).append(j)
    for element in primary[start:]:
        found = next((j for j in hinted.get(_hint(element), ())
                      if not taken[j] and same(element, shadow[j])), None)
        if found is None:
            found = next((j for j in range(start, len(shadow))
                          if not taken[j] and same(element, shadow[j])), None)
            if found is None:
                return None
        taken[found] = True
        partner.append(found)
    return partner


def _hint(element: Any) -> tuple:
    """The integers and the texts that do not start with a digit (no stamp) of an object:
    what two equal elements most likely spell alike."""
    if type(element) is not dict:
        return ()
    return tuple((key, value) for key, value in element.items()
                 if type(value) is int or (type(value) is str and not value[:1].isdigit()))


def _explains(mine: list[float], theirs: list[float], partner: list[int]) -> bool:
    """True when both sides are sorted by these stamps the same way and every pair they
    order differently ties on exactly one side."""
    directions = {_direction(mine), _direction(theirs)} - {0}
    if None in directions or len(directions) > 1:
        return False
    paired = [theirs[j] for j in partner]  # the shadow's stamp of each primary element
    for i in range(len(mine)):
        for k in range(i + 1, len(mine)):
            if partner[i] > partner[k] and (mine[i] == mine[k]) == (paired[i] == paired[k]):
                return False
    return True


def _direction(stamps: list[float]) -> int | None:
    """1 when non-decreasing, -1 when non-increasing (not all equal), 0 when all equal,
    None when neither: not sorted by these stamps."""
    steps = {(b > a) - (b < a) for a, b in zip(stamps, stamps[1:])}
    steps.discard(0)
    if len(steps) > 1:
        return None
    return steps.pop() if steps else 0
