"""Write order: the shadow sees the requests in the order the primary put them in.

Concurrent writes reach a backend in an order nobody can observe, so two backends would
assign ids in different orders and every later comparison would disagree. With ordered
writes (the default), a request that may write runs alone on the primary (under `lock`)
and is handed to the shadow's ordered lane (one worker, FIFO) under that same lock, so
both sides apply one sequence of writes.

Reads stay concurrent, and only real happens-before relations are kept on the shadow:
  - a read waits for the writes that had completed on the primary before it arrived
    (it is *parked* until then, outside the lane, so it holds no worker);
  - a write waits for the reads that had completed on the primary before it started.
A read and a write that overlapped on the primary are concurrent: either order is one
the primary could have produced, so the shadow may run them in either order.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class ReadTicket:
    """One mirrored read: the writes it must see, and its completion number once the
    primary has answered it."""

    after: int
    completion: int | None = None
    shadow_done: bool = False


class WriteOrder:
    """The primary's write lock and the happens-before bookkeeping of the shadow."""

    def __init__(self, *, max_parked: int,
                 on_dropped: Callable[[str], None] | None = None) -> None:
        self.lock = asyncio.Lock()
        self.max_parked = max_parked
        self._on_dropped = on_dropped or (lambda reason: None)
        self._submitted = 0            # writes handed to the shadow (their seq numbers)
        self._primary_done = 0         # last seq the primary has completed
        self._finished = 0             # shadow is done with every seq up to this
        self._skipped: set[int] = set()
        self._parked: deque[tuple[int, Callable[[], None], Callable[[str], None]]] = deque()
        self._completions = 0          # reads answered by the primary so far
        self._pending: OrderedDict[int, None] = OrderedDict()  # completions not done on shadow
        self._read_waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def pending(self) -> int:
        """Writes handed to the shadow and not finished there."""
        return self._submitted - self._finished

    @property
    def parked(self) -> int:
        return len(self._parked)

    # --- writes -------------------------------------------------------------------------

    def write_started(self) -> tuple[int, int]:
        """Number a write handed to the shadow (call under `lock`): returns (seq, reads it
        must wait for on the shadow)."""
        self._submitted += 1
        return self._submitted, self._completions

    def write_done_on_primary(self, seq: int) -> None:
        """The primary has answered write `seq` (its reply is being passed on; the lock
        may already be with the next write, which may even have been answered first)."""
        if seq > self._primary_done:
            self._primary_done = seq

    def dropped(self, seq: int) -> None:
        """Write `seq` will never run on the shadow; it counts as finished once the writes
        before it are."""
        if seq <= self._finished:
            return
        if seq == self._finished + 1:
            self.finished(seq)
        else:
            self._skipped.add(seq)

    def finished(self, seq: int) -> None:
        """The shadow is done with write `seq` (answered or failed): release the reads
        parked behind it."""
        if seq > self._finished:
            self._finished = seq
        while self._finished + 1 in self._skipped:
            self._finished += 1
            self._skipped.discard(self._finished)
        while self._parked and self._parked[0][0] <= self._finished:
            _, submit, _ = self._parked.popleft()
            submit()

    async def reads_done(self, upto: int, timeout: float) -> bool:
        """Wait until the shadow is done with every read the primary completed up to
        completion number `upto`; False on timeout."""
        if not self._pending or next(iter(self._pending)) > upto:
            return True
        future = asyncio.get_running_loop().create_future()
        self._read_waiters.append((upto, future))
        try:
            async with asyncio.timeout(timeout):
                await future
            return True
        except TimeoutError:
            return False

    # --- reads --------------------------------------------------------------------------

    def read_arrived(self) -> ReadTicket:
        return ReadTicket(after=self._primary_done)

    def when_visible(self, ticket: ReadTicket, submit: Callable[[], None],
                     drop: Callable[[str], None]) -> None:
        """Run `submit` once the shadow has the writes the read must see; park it until
        then (bounded: beyond `max_parked` the read is dropped, reported like a lane's)."""
        if ticket.after <= self._finished:
            submit()
        elif len(self._parked) >= self.max_parked:
            self._on_dropped("queue_full")
            drop("queue_full")
        else:
            self._parked.append((ticket.after, submit, drop))

    def read_done_on_primary(self, ticket: ReadTicket) -> None:
        self._completions += 1
        ticket.completion = self._completions
        if not ticket.shadow_done:
            self._pending[ticket.completion] = None

    def read_done_on_shadow(self, ticket: ReadTicket) -> None:
        if ticket.shadow_done:
            return
        ticket.shadow_done = True
        if ticket.completion is None:
            return
        self._pending.pop(ticket.completion, None)
        oldest = next(iter(self._pending), None)
        ready = [w for w in self._read_waiters if oldest is None or oldest > w[0]]
        if ready:
            self._read_waiters = [w for w in self._read_waiters if w not in ready]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)

    def drop_parked(self, reason: str) -> None:
        """Drop every parked read (shutdown)."""
        while self._parked:
            _, _, drop = self._parked.popleft()
            self._on_dropped(reason)
            drop(reason)
