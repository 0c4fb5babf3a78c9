"""How far behind the primary the shadow serves: the replay lag.

For each compared exchange, the lag is the time from the primary receiving the client's
request to the shadow receiving its copy: queueing on the mirror lane, waiting for the
writes it must see, a slow or busy shadow. `current` is the latest lag (the dashboard's
"seconds behind"). A "now" the shadow stamps into its reply may come as late as the end
of its reply, so the comparison grants reply timestamps the exchange's *span* (request
received on the primary -> the shadow's last byte): `allowance` is the largest span of
the last `window` seconds (shadow.compare.moments).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class ReplayLag:
    """The shadow's lag behind the primary, kept per second for a sliding window."""

    def __init__(self, *, window: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.current = 0.0
        self._clock = clock
        self._seconds: deque[tuple[int, float]] = deque()  # (second, largest span in it)
        self._allowance = 0.0

    def observe(self, lag: float, span: float | None = None) -> None:
        """One exchange reached the shadow `lag` seconds after it reached the primary, and
        the shadow's reply ended `span` seconds after that (default: `lag`)."""
        lag = max(lag, 0.0)
        self.current = lag
        span = max(lag, span or 0.0)
        second = int(self._clock())
        if self._seconds and self._seconds[-1][0] == second:
            if span > self._seconds[-1][1]:
                self._seconds[-1] = (second, span)
        else:
            self._seconds.append((second, span))
        self._allowance = max(self._allowance, span)
        self._expire(second)

    @property
    def allowance(self) -> float:
        """The largest span seen in the window, rounded up to a whole second (so that the
        rules built from it change rarely)."""
        self._expire(int(self._clock()))
        return float(math.ceil(self._allowance))

    def _expire(self, now: int) -> None:
        oldest = now - self.window
        if self._seconds and self._seconds[0][0] < oldest:
            while self._seconds and self._seconds[0][0] < oldest:
                self._seconds.popleft()
            self._allowance = max((lag for _, lag in self._seconds), default=0.0)
