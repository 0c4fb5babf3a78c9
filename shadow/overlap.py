"""How many writes overlapped one exchange, on each side, from counters the proxy keeps.

A **write** here is an exchange that may change rows: one its route policy says may write,
or a read of a route row capture has seen writing (an audited read; a read that marks
messages read). Each side has a `WriteClock`: the writes running there and how many ever
started, so the writes that ran at some moment of any span are told from its two ends. An
exchange's `Watch` counts three kinds of writes beside it:

- on the primary, those that ran between its arrival and the last byte of its reply;
- on the shadow, those that ran between its copy's send and the last byte of its reply;
- on the shadow, those that *overtook* it: they arrived at the primary after it (a larger
  exchange number, assigned on arrival), yet their shadow copy started before its copy was
  sent. The primary served the exchange without them; the shadow, after them. Causality
  keeps a write that arrived after a read *completed* behind that read on the shadow, so
  this counts the writes that arrived while it ran (already seen on the primary) and the
  writes causality does not order: reads that write but usually do not, which run beside
  other reads on the shadow. The proxy's own order keeps this at zero today: copies are
  handed to the shadow lane in exchange-number order, the lane starts them first in,
  first out, and each marks its send before it first waits; a later write that runs
  beside a read there is counted in `shadow` instead. It is counted all the same, so that
  a change of that order could never turn such a race into a mismatch.

A write that arrived on the primary after the exchange's reply and ran on the shadow after
the exchange's copy is no overlap: the next write of a client that waits for each reply is
such a write, and counting it would make every difference of that client's reads a race.

An exchange that is itself counted as a write does not overlap itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

Mark = tuple[int, int]
"""(writes ever started, writes running) on one side at one moment."""
KEPT = 4096
"""Exchange numbers of the most recent writes started on a side that are kept to tell
which overtook a read; a read whose copy waited behind more writes than that counts every
older one as overtaking it."""


class WriteClock:
    """The writes running on one side (`in_flight`), how many ever `started` there, and
    the exchange numbers of the most recent ones (`KEPT`). `idle`, when set, is called
    each time the last running write ends (it must not wait)."""

    __slots__ = ("in_flight", "started", "idle", "_numbers")

    def __init__(self) -> None:
        self.in_flight = 0
        self.started = 0
        self.idle: Callable[[], None] | None = None
        self._numbers: deque[int] = deque(maxlen=KEPT)

    def sent(self, number: int = -1) -> None:
        """A write starts; `number`: its exchange's number (-1: none, never overtakes)."""
        self.in_flight += 1
        self.started += 1
        self._numbers.append(number)

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self.idle is not None:
            self.idle()

    def start(self, number: int = -1) -> Callable[[], None]:
        """Count one write running from now; returns what ends it (once, however often
        it is called)."""
        self.sent(number)
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self.finished()

        return end

    def mark(self) -> Mark:
        return self.started, self.in_flight

    def overlapped(self, mark: Mark) -> int:
        """How many writes ran at some moment since `mark`: those running then, and
        those started since."""
        started, running = mark
        return running + self.started - started

    def later(self, mark: Mark, number: int) -> int:
        """How many writes started since `mark` belong to exchanges numbered above
        `number` (they arrived at the primary after it)."""
        since = self.started - mark[0]
        kept = min(since, len(self._numbers))
        recent = islice(reversed(self._numbers), kept)
        return since - kept + sum(1 for n in recent if n > number)


class Clocks:
    """The writes of both roles: `primary` (as the primary receives them) and `shadow`
    (from a shadow write's send to its reply)."""

    __slots__ = ("primary", "shadow")

    def __init__(self) -> None:
        self.primary = WriteClock()
        self.shadow = WriteClock()

    def quiet(self) -> bool:
        """No write is running on either side now."""
        return self.primary.in_flight == 0 and self.shadow.in_flight == 0

    def mark(self) -> tuple[Mark, Mark]:
        return self.primary.mark(), self.shadow.mark()

    def overlapped(self, mark: tuple[Mark, Mark]) -> int:
        """Writes that ran on either side at some moment since `mark`."""
        return self.primary.overlapped(mark[0]) + self.shadow.overlapped(mark[1])

    def watch(self, number: int = -1, itself: bool = False) -> Watch:
        """The overlap of exchange `number`, whose request is being sent to the primary
        now, before it is counted there itself (`itself`: it is counted as a write)."""
        return Watch(self, self.primary.mark(), self.shadow.mark(), number, itself)


@dataclass(slots=True, eq=False)
class Watch:
    """How many writes overlapped one exchange: on the primary from its arrival to the
    last byte of its reply (`primary`), on the shadow from its copy's send to the last
    byte of its reply (`shadow`), and the shadow writes that overtook its copy
    (`overtaken`). Each end is taken once, the first time it is reported."""

    clocks: Clocks
    arrived: Mark
    shadow_arrived: Mark
    number: int = -1
    itself: bool = False
    primary: int | None = None
    shadow: int | None = None
    overtaken: int = 0
    shadow_sent: Mark | None = None

    def primary_replied(self) -> None:
        if self.primary is None:
            self.primary = self.clocks.primary.overlapped(self.arrived) - self.itself

    def sending_shadow(self) -> None:
        """Its copy leaves for the shadow now, before it is counted there itself."""
        if self.shadow_sent is None:
            self.shadow_sent = self.clocks.shadow.mark()
            self.overtaken = self.clocks.shadow.later(self.shadow_arrived, self.number)

    def shadow_replied(self) -> None:
        if self.shadow is None and self.shadow_sent is not None:
            self.shadow = self.clocks.shadow.overlapped(self.shadow_sent) - self.itself

    @property
    def writes(self) -> int:
        return (self.primary or 0) + (self.shadow or 0) + self.overtaken
