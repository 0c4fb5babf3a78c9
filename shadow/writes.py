"""Write order: the same writes, in the same order, on both backends.

Concurrent writes reach a backend in an order nobody can observe, so two backends would
assign ids in different orders and every later comparison would disagree. With ordered
writes (the default), a request that may write holds the primary's write lock while it
runs on the primary (and, with row capture, while its changes are read); it is handed to
the shadow's ordered lane, a FIFO with one worker, under that same lock, so both sides see
one sequence. Reads stay concurrent on both sides, but a shadow read waits until the
shadow has finished the writes that were handed over before it, and a shadow write waits
until the reads handed over before it are done: whatever order the proxy received the
requests in, the shadow sees it too.
"""

from __future__ import annotations

import asyncio


class WriteOrder:
    """The primary's write lock and the shadow's write sequence."""

    def __init__(self, *, catch_up_timeout: float) -> None:
        self.lock = asyncio.Lock()
        self.catch_up_timeout = catch_up_timeout
        self._submitted = 0
        self._finished = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._skipped: set[int] = set()
        self._open_reads: dict[int, int] = {}  # writes handed over before them -> reads open
        self._read_waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def submitted(self) -> int:
        """Writes handed to the shadow so far (a read waits for this many)."""
        return self._submitted

    @property
    def pending(self) -> int:
        return self._submitted - self._finished

    def next_write(self) -> int:
        """Number the next write handed to the shadow (call under `lock`)."""
        self._submitted += 1
        return self._submitted

    def dropped(self, seq: int) -> None:
        """Write `seq` will never run on the shadow; it counts as finished once the
        writes before it are."""
        if seq == self._finished + 1:
            self.finished(seq)
        else:
            self._skipped.add(seq)

    def finished(self, seq: int) -> None:
        """The shadow is done with write `seq` (answered or failed)."""
        if seq > self._finished:
            self._finished = seq
        while self._finished + 1 in self._skipped:
            self._finished += 1
            self._skipped.discard(self._finished)
        ready = [w for w in self._waiters if w[0] <= self._finished]
        if ready:
            self._waiters = [w for w in self._waiters if w[0] > self._finished]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)

    def read_started(self) -> int:
        """Register a shadow read; returns the number of writes it must wait for."""
        after = self._submitted
        self._open_reads[after] = self._open_reads.get(after, 0) + 1
        return after

    def read_finished(self, after: int) -> None:
        left = self._open_reads.get(after, 0) - 1
        if left > 0:
            self._open_reads[after] = left
            return
        self._open_reads.pop(after, None)
        oldest = min(self._open_reads, default=None)
        ready = [w for w in self._read_waiters if oldest is None or oldest >= w[0]]
        if ready:
            self._read_waiters = [w for w in self._read_waiters if w not in ready]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)

    async def reads_done(self, seq: int) -> bool:
        """Wait until every read handed over before write `seq` is done; False on timeout."""
        oldest = min(self._open_reads, default=None)
        if oldest is None or oldest >= seq:
            return True
        future = asyncio.get_running_loop().create_future()
        self._read_waiters.append((seq, future))
        try:
            async with asyncio.timeout(self.catch_up_timeout):
                await future
            return True
        except TimeoutError:
            return False

    async def caught_up(self, seq: int) -> bool:
        """Wait until the shadow has finished write `seq`; False on timeout."""
        if seq <= self._finished:
            return True
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        try:
            async with asyncio.timeout(self.catch_up_timeout):
                await future
            return True
        except TimeoutError:
            return False
