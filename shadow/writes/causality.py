"""Causality on the shadow: it replays the primary's concurrency, not a serialization.

A shadow request starts only after every write that had completed on the primary before
the request was sent there has completed on the shadow; a shadow write also waits for the
reads that had completed on the primary before it was sent (so a read never sees, on the
shadow, a write that came after it). Requests that overlapped on the primary have no order
between them and run concurrently on the shadow, so a slow write holds nothing there
either. With row capture, a request also waits until the rows of the writes it follows are
compared (`keys_ready`), so a request naming a row one of them created finds its key pair
learnt; a request grouped with such a write does not wait for it (their rows are compared
together, once it has run). That wait is bounded, and a request let go at its bound is
counted (see `Attribution.keys_ready`).

"Writes" are the exchanges the route policy says may write, and reads of a route whose
reads usually write rows (`shadow.writes.windows.Learnt.usually`, asked when the exchange is
sent): a read that writes an audit row is ordered as a write, so a summary of those rows on
the shadow sees the same reads before it as on the primary. Reads that write only on
their error path stay reads: ordering them would serialise most of the shadow's reads.

Completions are numbered in the primary's completion order; a watermark per kind says up
to which number the shadow is done with all of them. A request that cannot run yet is
*parked* outside the mirror lane (it holds no worker), bounded by `max_parked`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class Ticket:
    """One mirrored exchange's place in the primary's order."""

    flow: int
    writes: bool
    after_writes: int
    after_reads: int
    index: int | None = None
    shadow_done: bool = False
    sent_at: float = field(default_factory=time.monotonic)


class _Marks:
    """Completion numbers of one kind, and the watermark of those done on the shadow."""

    def __init__(self) -> None:
        self.completed = 0
        self.mark = 0
        self._done: set[int] = set()

    def complete(self) -> int:
        self.completed += 1
        return self.completed

    def done(self, index: int) -> bool:
        """Note `index` as done on the shadow; True when the watermark moved."""
        self._done.add(index)
        moved = False
        while self.mark + 1 in self._done:
            self.mark += 1
            self._done.discard(self.mark)
            moved = True
        return moved


Parked = tuple[Ticket, Callable[[], None], Callable[[str], None]]


class Causality:
    """Happens-before between the primary's exchanges, kept on the shadow."""

    def __init__(self, *, max_parked: int, on_dropped: Callable[[str], None] | None = None,
                 keys_ready: Callable[[Ticket], bool] | None = None) -> None:
        self.max_parked = max_parked
        self.keys_ready = keys_ready or (lambda ticket: True)
        self._on_dropped = on_dropped or (lambda reason: None)
        self._writes = _Marks()
        self._reads = _Marks()
        self._parked: deque[Parked] = deque()
        self.in_flight = 0

    @property
    def parked(self) -> int:
        return len(self._parked)

    @property
    def pending(self) -> int:
        """Mirrored writes not yet done on the shadow (parked, queued or running)."""
        return self.in_flight

    def sent(self, flow: int, writes: bool) -> Ticket:
        """The exchange is being sent to the primary now."""
        if writes:
            self.in_flight += 1
        return Ticket(flow, writes, self._writes.completed, self._reads.completed)

    def primary_done(self, ticket: Ticket) -> None:
        if ticket.index is not None:
            return
        marks = self._writes if ticket.writes else self._reads
        ticket.index = marks.complete()
        if ticket.shadow_done and marks.done(ticket.index):
            self.release()

    def shadow_done(self, ticket: Ticket) -> None:
        """The shadow is done with the exchange (answered, failed or dropped)."""
        if ticket.shadow_done:
            return
        ticket.shadow_done = True
        if ticket.writes:
            self.in_flight -= 1
        if ticket.index is not None:
            marks = self._writes if ticket.writes else self._reads
            if marks.done(ticket.index):
                self.release()

    def ready(self, ticket: Ticket) -> bool:
        return (self._writes.mark >= ticket.after_writes
                and (not ticket.writes or self._reads.mark >= ticket.after_reads)
                and self.keys_ready(ticket))

    def when_ready(self, ticket: Ticket, submit: Callable[[], None],
                   drop: Callable[[str], None]) -> None:
        """Run `submit` once the shadow has what the exchange must see; park it until
        then (beyond `max_parked` it is dropped with reason `queue_full`)."""
        if self.ready(ticket):
            submit()
        elif len(self._parked) >= self.max_parked:
            self._on_dropped("queue_full")
            drop("queue_full")
        else:
            self._parked.append((ticket, submit, drop))

    def release(self) -> None:
        """Submit every parked exchange that may run now (also after keys were learnt)."""
        if not self._parked:
            return
        kept: deque[Parked] = deque()
        mark = self._writes.mark
        while self._parked:
            item = self._parked.popleft()
            if item[0].after_writes > mark:
                kept.append(item)
                kept.extend(self._parked)
                self._parked.clear()
                break
            if self.ready(item[0]):
                item[1]()
            else:
                kept.append(item)
        self._parked = kept

    def drop_parked(self, reason: str) -> None:
        """Drop every parked exchange (shutdown, forced mode change)."""
        while self._parked:
            _, _, drop = self._parked.popleft()
            self._on_dropped(reason)
            drop(reason)
