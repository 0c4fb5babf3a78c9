"""One backend's exchange windows, and which of them each drained change may belong to.

A **window** is the time one exchange spent on one backend, on the proxy's clock
(`time.time()`): from the moment its request was sent until its reply's last byte
arrived (or the exchange failed). Every request sent to a backend with row capture gets
one, reads too; recording it costs two clock reads and an append.

The change log is drained off the request path, in **batches**. The proxy's clock
brackets each batch's query as `[d0, d1]`. A change may belong to a window when both hold:

- *clock*: the change's time (`RowChange.at`, on the database's clock, mapped to the
  proxy's through a `Clock`, widened by its margin) falls inside the window; or, when
  the capture reads a log whose position the proxy can read too (SQLite's write-ahead
  log, `shadow.rows.sqlite_position`), the change's place in the log (`RowChange.mark`)
  lies after the position read when the window opened and at or before the one read
  when it closed: the log's own order, exact, whatever the clocks;
- *batch*: it was committed before the batch's query ran, so its window started before
  `d1`; it was not committed before the previous batch's query ran, and an app commits
  before it replies, so its window ended after that batch's `d0`.

The batch rule needs no clock of the database at all: a write that starts after the
drain that followed the previous write has returned can never share a change with it.
That is what the bounded hold on the primary buys (see `shadow.writes.hold`).

Windows of routes not known to write (reads) are candidates only when no write window is;
a change with only read windows teaches that route to write (`Side.writing`), so reads
that write own their changes. The backends of one proxy share what they learn (`Learnt`):
a route learnt writing on either side is a candidate on both from then on, so a read's row
is not charged to a concurrent write on one side and to the read on the other once either
has seen it alone. A route whose reads usually write (an audited read, not a read that
writes only on its error path) is ordered as a write on the shadow
(`shadow.writes.causality`). A change no window can hold is an **outside write**.

A window is **final** after the first drain that began after it closed: by the batch rule
no later change can belong to it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shadow.verdict import RowChange


@dataclass(frozen=True, slots=True)
class Clock:
    """How a database's change times map to the proxy's clock.

    A change stamped `at` happened on the proxy's clock between `at - offset - before` and
    `at - offset + after`. SQLite on this host: offset 0, `julianday('now')` truncated to
    the millisecond. PostgreSQL: the offset measured by a bracketed query, its uncertainty
    plus the clock's microsecond as the margin on both sides.
    """

    offset: float = 0.0
    before: float = 0.0002
    after: float = 0.0012

    def span(self, at: float) -> tuple[float, float]:
        mapped = at - self.offset
        return mapped - self.before, mapped + self.after


SQLITE_CLOCK = Clock()


def _coarse_tick() -> float:
    """The resolution of the clock the kernel may stamp a file's modification with
    (Linux's CLOCK_REALTIME_COARSE, id 5: a tick, 4 ms at 250 Hz); 10 ms where unknown."""
    try:
        tick = time.clock_getres(5)
    except (OSError, AttributeError):
        return 0.010
    return tick if 0 < tick <= 0.010 else 0.010


WAL_TICK = _coarse_tick() + 0.001
WAL_CLOCK = Clock(before=0.0002, after=0.0002)
"""A SQLite capture reading the write-ahead log knows a change's moment only between
two bounds (`RowChange.since` and `at`): the log file's modification time, which the
kernel may keep to its coarse clock (up to `WAL_TICK` early), and the moment it read the
log."""


Positions = Callable[[], dict[str, tuple[int, int]]]
"""Where each of a backend's logs stands now, by log name: (lower, upper) positions."""


@dataclass(slots=True, eq=False)
class Window:
    """One exchange's time on one backend. `flow` is the exchange's number; `opened` and
    `closed`, per log, the positions it stood at when the window opened and closed."""

    flow: int
    route: str
    writes: bool
    start: float
    end: float | None = None
    final: bool = False
    wrote: bool = False
    opened: dict[str, int] | None = None
    closed: dict[str, int] | None = None


class Learnt:
    """What row capture learnt about reads, shared by the backends of one proxy: the
    routes seen writing (`routes`), and how often their reads write."""

    MIN_READS = 5
    """Reads of a route seen before `usually` may say it writes."""

    def __init__(self) -> None:
        self.routes: set[str] = set()
        self._reads: dict[str, int] = {}
        self._wrote: dict[str, int] = {}

    def read(self, route: str) -> None:
        self._reads[route] = self._reads.get(route, 0) + 1

    def wrote(self, route: str) -> None:
        self._wrote[route] = self._wrote.get(route, 0) + 1

    def usually(self, route: str) -> bool:
        """At least half the reads of `route` wrote rows (over both backends)."""
        reads = self._reads.get(route, 0)
        return (route in self.routes and reads >= self.MIN_READS
                and 2 * self._wrote.get(route, 0) >= reads)


@dataclass(slots=True)
class Placed:
    """A drained change and the windows it may belong to (none: an outside write)."""

    change: RowChange
    windows: list[Window] = field(default_factory=list)


class Side:
    """The windows of one backend that may still receive changes."""

    def __init__(self, backend: str, clock: Clock = SQLITE_CLOCK,
                 learnt: Learnt | None = None, positions: Positions | None = None) -> None:
        self.backend = backend
        self.clock = clock
        self.positions = positions
        self.live: list[Window] = []
        self.learnt = learnt if learnt is not None else Learnt()
        self.writing: set[str] = self.learnt.routes
        self._previous_d0 = float("-inf")
        self.closed_since_drain = 0

    def open(self, flow: int, route: str, writes: bool, at: float) -> Window:
        window = Window(flow, route, writes, at)
        if self.positions is not None:
            window.opened = {log: low for log, (low, _) in self.positions().items()} or None
        if not writes:
            self.learnt.read(route)
        self.live.append(window)
        return window

    def close(self, window: Window, at: float) -> None:
        if window.end is None:
            window.end = max(at, window.start)
            if self.positions is not None and window.opened is not None:
                window.closed = {log: high for log, (_, high) in self.positions().items()}
            self.closed_since_drain += 1

    @property
    def open_count(self) -> int:
        return sum(1 for w in self.live if w.end is None)

    def place(self, changes: list[RowChange], d0: float, d1: float) -> list[Placed]:
        """Where each change of one batch may belong; teaches `writing` from reads of one
        route that are the only candidates. Call `settle(d0)` after it."""
        after_previous = self._previous_d0
        placed = []
        for change in changes:
            found = [w for w in self.live if self._holds(w, change, after_previous, d1)]
            writes = [w for w in found if w.writes or w.route in self.writing]
            sure = True
            if found and not writes:
                # reads alone may hold it: a route is taught to write only when it is
                # the one route they serve (a change known only within a span may fall
                # in the reads of several routes; the route that writes is seen alone)
                sure = len({w.route for w in found}) == 1
                if sure:
                    self.writing.update(w.route for w in found)
                writes = found
            for w in writes:
                if not w.writes and not w.wrote:
                    w.wrote = True
                    if sure:
                        self.learnt.wrote(w.route)
            placed.append(Placed(change, writes))
        self._previous_d0 = d0
        return placed

    def _holds(self, w: Window, change: RowChange, after_previous: float, d1: float) -> bool:
        if w.final or w.start >= d1:
            return False
        if w.end is not None and w.end <= after_previous:
            return False
        placed = _by_position(w, change.mark)
        if placed is not None:
            return placed
        if change.at is None:
            return True
        low, high = self.clock.span(change.at)
        if change.since is not None:
            low = min(low, change.since - self.clock.offset - self.clock.before)
        return w.start <= high and (w.end is None or w.end >= low)

    def settle(self, d0: float) -> list[Window]:
        """The windows that became final with the batch whose query began at `d0`."""
        done = [w for w in self.live if w.end is not None and w.end < d0]
        if done:
            for w in done:
                w.final = True
            self.live = [w for w in self.live if not w.final]
        self.closed_since_drain = sum(1 for w in self.live if w.end is not None)
        return done


def _by_position(w: Window, mark: tuple[str, int] | None) -> bool | None:
    """Whether `w` holds a change at `mark` by its log's order; None when either lacks
    a position of that log (then time decides)."""
    if mark is None or w.opened is None:
        return None
    log, position = mark
    low = w.opened.get(log)
    if low is None:
        return None
    if position <= low:
        return False
    if w.end is None:
        return True
    high = (w.closed or {}).get(log)
    return None if high is None else position <= high


async def measure_clock(now: Callable[[], Awaitable[float]], tries: int = 5) -> Clock:
    """A database clock's offset from `time.time()`, from the tightest of `tries`
    bracketed reads; its uncertainty (plus a microsecond) is the margin both ways."""
    best: tuple[float, float] | None = None
    for _ in range(tries):
        t0 = time.time()
        db = await now()
        t1 = time.time()
        if best is None or t1 - t0 < best[1]:
            best = (db - (t0 + t1) / 2, t1 - t0)
    offset, rtt = best  # type: ignore[misc]
    margin = rtt / 2 + 1e-6
    return Clock(offset=offset, before=margin, after=margin)
