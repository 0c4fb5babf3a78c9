"""Verdicts held while the places they differ at are still being learnt; pure, no I/O.

During the cold start of the learning of values drawn fresh per reply
(shadow.compare.fresh), a difference at a place that is still gathering its evidence is
neither known noise nor known to be a bug. A comparison whose *only* differences are at
such places (each value of the place's shape on both sides, the place neither refused
nor rejected) is not recorded at once: its verdict is held here, in a bounded place,
and settled when its places are decided:

- every place learnt (it hides the difference now, in the reply's status class): the
  verdict is recorded as a match, its differences counted as hidden noise;
- any place refused (a value seen twice, another shape) or rejected by the operator:
  recorded as the mismatch it was, at once;
- its age reaches `wait` seconds, or `most` verdicts are held and room is needed for a
  new one (the oldest goes first), or the proxy stops: recorded as it stands then, each
  difference hidden if its place hides it by then and a mismatch otherwise.

So nothing is hidden silently and nothing is lost: each held verdict comes out exactly
once, through `offer`, `settle`, `due` or `flush`. A comparison with any other difference
(a status, a header, a row, a value at no such place) is never held here.

What is held (`item`) is the caller's: the verifier holds a comparison stripped of its
bodies and values, beside the sample the store would keep of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shadow.compare.fresh import HIDE, KEEP
from shadow.verdict import Difference

LEARNT, REFUSED, BOUND, STOPPED = "learnt", "refused", "bound", "stopped"
"""Why a held verdict was settled: its places learnt, one refused, a bound reached, or
the proxy stopping."""

Decide = Callable[[str, str, int], "str | None"]
"""(route, place, status) -> HIDE, KEEP or None while the place is still gathering."""


@dataclass(slots=True, eq=False)
class Held:
    """One held verdict: the caller's `item`, its `route` (`METHOD /template`), the
    primary's `status`, its differences and the fresh place each waits on."""

    item: Any
    route: str
    status: int
    differences: tuple[Difference, ...]
    places: tuple[str, ...]
    deadline: float


@dataclass(frozen=True, slots=True)
class Settled:
    """A held verdict's outcome: the differences `kept` (mismatches), the places of the
    `hidden` ones (noise), and `why` it was settled."""

    held: Held
    kept: tuple[Difference, ...]
    hidden: tuple[str, ...]
    why: str


def settle(held: Held, decide: Decide, why: str | None = None) -> Settled | None:
    """The outcome of `held` now, or None while it must wait. `why` given (a bound
    reached, a stop): settled whatever its places say, as they stand."""
    decisions = [decide(held.route, place, held.status) for place in held.places]
    if why is None:
        if KEEP in decisions:
            why = REFUSED
        elif all(d == HIDE for d in decisions):
            why = LEARNT
        else:
            return None
    kept = tuple(d for d, x in zip(held.differences, decisions) if x != HIDE)
    hidden = tuple(p for p, x in zip(held.places, decisions) if x == HIDE)
    return Settled(held, kept, hidden, why)


class HeldVerdicts:
    """The held verdicts, at most `most`, each for at most `wait` seconds of `clock`."""

    def __init__(self, *, wait: float, most: int, decide: Decide,
                 clock: Callable[[], float]) -> None:
        self.wait = wait
        self.most = most
        self.decide = decide
        self.clock = clock
        self._held: dict[int, Held] = {}  # in the order held, so deadlines ascend
        self._by_place: dict[str, dict[int, None]] = {}
        self._seq = 0
        self.settled: dict[str, int] = {LEARNT: 0, REFUSED: 0, BOUND: 0, STOPPED: 0}

    def __len__(self) -> int:
        return len(self._held)

    def offer(self, item: Any, route: str, status: int, differences: tuple[Difference, ...],
              places: tuple[str, ...]) -> list[Settled]:
        """Hold one verdict whose differences all wait on `places` (one each); returns
        the verdicts settled to make room for it (the oldest, at the count bound)."""
        out = []
        while len(self._held) >= self.most > 0:
            out.append(self._take(next(iter(self._held)), BOUND))
        self._seq += 1
        self._held[self._seq] = Held(item, route, status, differences, places,
                                     self.clock() + self.wait)
        for place in places:
            self._by_place.setdefault(place, {})[self._seq] = None
        return out

    def settle(self, places: Iterable[str]) -> list[Settled]:
        """The held verdicts waiting on any of `places` (whose evidence just changed)
        that can be settled now."""
        seqs = {seq for place in places for seq in self._by_place.get(place, ())}
        return self._decided(sorted(seqs))

    def due(self) -> list[Settled]:
        """The held verdicts whose wait is over (as they stand), and every other that can
        be settled now (an operator's decision changes places without evidence)."""
        now, out = self.clock(), []
        while self._held:
            seq, held = next(iter(self._held.items()))
            if held.deadline > now:
                break
            out.append(self._take(seq, BOUND))
        return out + self._decided(list(self._held))

    def flush(self) -> list[Settled]:
        """Every held verdict, as it stands (the proxy stops)."""
        return [self._take(seq, STOPPED) for seq in list(self._held)]

    def _decided(self, seqs: list[int]) -> list[Settled]:
        out = []
        for seq in seqs:
            outcome = settle(self._held[seq], self.decide)
            if outcome is not None:
                self._forget(seq)
                self.settled[outcome.why] += 1
                out.append(outcome)
        return out

    def _take(self, seq: int, why: str) -> Settled:
        held = self._forget(seq)
        outcome = settle(held, self.decide, why)
        assert outcome is not None
        self.settled[why] += 1
        return outcome

    def _forget(self, seq: int) -> Held:
        held = self._held.pop(seq)
        for place in held.places:
            waiting = self._by_place.get(place)
            if waiting is not None:
                waiting.pop(seq, None)
                if not waiting:
                    del self._by_place[place]
        return held
