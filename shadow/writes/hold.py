"""The bounded hold: what a write may wait on the primary to keep its rows its own.

A write that reaches the primary while no other write is running there, and after the
change log was drained behind the previous one, can be attributed its changes exactly
(see `shadow.writes.windows`). So a write waits, one at a time, until the primary is free
in that sense, but at most `limit` seconds; past that it goes anyway and overlaps (its
changes may then be attributed to a group). It does not wait at all when the write in
the way has already run longer than `limit`: a slow route (an upload, an outside call)
would not finish in time, so waiting would only add latency. No client ever waits more
than `limit` because of another, whatever that other client does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class Hold:
    """The primary's write hold; `limit` 0 turns it off."""

    def __init__(self, *, limit: float, drains: bool,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self.drains = drains
        self._on_wait = on_wait or (lambda outcome: None)
        self._open: dict[int, float] = {}
        self._last_close = float("-inf")
        self._drained_from = float("-inf")
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._granted: asyncio.Future[None] | None = None
        self._tokens = 0

    def free(self) -> bool:
        return (not self._open and self._granted is None
                and (not self.drains or self._drained_from >= self._last_close))

    async def enter(self) -> None:
        """Wait until the primary is free for a write, at most `limit` seconds."""
        if self.limit <= 0 or (self.free() and not self._waiters):
            return
        now = time.monotonic()
        if self._open and now - min(self._open.values()) >= self.limit:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        outcome = "waited"
        try:
            async with asyncio.timeout(self.limit):
                await asyncio.shield(future)
        except TimeoutError:
            outcome = "expired"
        finally:
            self._on_wait(outcome)
            if self._granted is future:
                self._granted = None
            elif not future.done():
                future.cancel()
            try:
                self._waiters.remove(future)
            except ValueError:
                pass

    def opened(self) -> int:
        """A write was sent to the primary; returns its token for `closed`."""
        self._tokens += 1
        self._open[self._tokens] = time.monotonic()
        return self._tokens

    def closed(self, token: int) -> None:
        if self._open.pop(token, None) is not None:
            self._last_close = time.monotonic()
            self._wake()

    def drained(self, began: float) -> None:
        """The change log was drained by a query that began at `began` (monotonic)."""
        self._drained_from = max(self._drained_from, began)
        self._wake()

    def _wake(self) -> None:
        if self._granted is not None and self._granted.done():
            self._granted = None
        if not self.free():
            return
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self._granted = future
                return
