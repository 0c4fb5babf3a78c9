"""Mode changes under load: the writes of the old mode finish before the new mode writes.

A mode change swaps which database is written first. If a write of the old mode were still
running on its shadow while writes of the new mode began, the two databases would receive
inserts in different orders and give the same id to different rows. So a change closes the
barrier: writes that arrive meanwhile wait at it (reads go on), until every write already
sent has completed on the primary and on the shadow and its rows are compared; then the
mode switches and the waiting writes go, under the new mode. The wait is bounded; if the
writes cannot complete in time the change is refused with that reason, or, when forced,
made anyway and the shadow marked diverged (its ids can no longer be trusted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class BarrierTimeout(Exception):
    """The writes of the old mode did not complete in time; `.pending` says what is left."""

    def __init__(self, pending: str) -> None:
        self.pending = pending
        super().__init__(pending)


class Barrier:
    """Counts writes sent to the primary and holds new ones while a mode change drains."""

    def __init__(self, *, pending: Callable[[], str]) -> None:
        self._pending = pending
        self._open = asyncio.Event()
        self._open.set()
        self.in_flight = 0
        self._quiet_since = float("-inf")

    @property
    def quiet_since(self) -> float | None:
        """The moment (`time.time()`) since which no write has run on the primary: when
        the last one finished; None while one is running there."""
        return None if self.in_flight else self._quiet_since

    @property
    def closed(self) -> bool:
        return not self._open.is_set()

    async def passing(self, limit: float) -> None:
        """Wait while a mode change drains (at most `limit` seconds)."""
        if self._open.is_set():
            return
        try:
            async with asyncio.timeout(limit):
                await self._open.wait()
        except TimeoutError:
            pass

    def sent(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1
        self._quiet_since = time.time()

    def left(self) -> str:
        """What the old mode still has in flight, in words ('' when nothing)."""
        parts = [f"{self.in_flight} write(s) on the primary"] if self.in_flight else []
        other = self._pending()
        return "; ".join(parts + ([other] if other else []))

    async def switch(self, wait: float, apply: Callable[[], Awaitable[None]], *,
                     force: bool) -> str:
        """Close the barrier, wait up to `wait` seconds for the old mode's writes, run
        `apply` (the switch), reopen. Returns what was still in flight ('' when nothing);
        raises BarrierTimeout instead of switching when something was and not `force`."""
        self._open.clear()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while (left := self.left()) and loop.time() < deadline:
                await asyncio.sleep(0.005)
            if left and not force:
                raise BarrierTimeout(left)
            await apply()
            return left
        finally:
            self._open.set()
