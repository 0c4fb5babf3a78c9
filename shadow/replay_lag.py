"""How far behind the primary the shadow serves: the replay lag.

For each compared exchange, the lag is the time from the primary receiving the client's
request to the shadow receiving its copy: queueing on the mirror lane, waiting for the
writes it must see, a slow or busy shadow. `current` is the latest lag (the dashboard's
"seconds behind"); `allowance` is the largest lag of the last `window` seconds, which the
comparison grants to "now" timestamps in replies (shadow.compare.moments).
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
        self._seconds: deque[tuple[int, float]] = deque()  # (second, largest lag in it)
        self._allowance = 0.0

    def observe(self, lag: float) -> None:
        """One exchange reached the shadow `lag` seconds after it reached the primary."""
        lag = max(lag, 0.0)
        self.current = lag
        second = int(self._clock())
        if self._seconds and self._seconds[-1][0] == second:
            if lag > self._seconds[-1][1]:
                self._seconds[-1] = (second, lag)
        else:
            self._seconds.append((second, lag))
        self._allowance = max(self._allowance, lag)
        self._expire(second)

    @property
    def allowance(self) -> float:
        """The largest lag seen in the window, rounded up to a whole second (so that the
        rules built from it change rarely)."""
        self._expire(int(self._clock()))
        return float(math.ceil(self._allowance))

    def _expire(self, now: int) -> None:
        oldest = now - self.window
        if self._seconds and self._seconds[0][0] < oldest:
            while self._seconds and self._seconds[0][0] < oldest:
                self._seconds.popleft()
            self._allowance = max((lag for _, lag in self._seconds), default=0.0)
