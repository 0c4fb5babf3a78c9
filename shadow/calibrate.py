"""A/A calibration: a share of safe requests sent once more to the primary's build.

A verifier listener. When an exchange with a safe method (GET and HEAD by default) has
been compared and the primary answered it, a sampled share of them is sent a second time
to the build that holds the primary role, through the mirror lane (so it is bounded,
timed out and never awaited by a client), and the two replies of that one build are
compared. What differs between them is noise for the route (shadow.compare.noise).
Routes whose policy keeps them from the shadow are never probed either: they were never
compared, so they never reach this listener. The probe carries the shadow marker header,
like every request the proxy makes on its own.

Two replies of one build also differ when a write changed the data between them: such a
difference is no noise. A probe during which a write ran on the primary (`writes`: the
count of writes sent to it and answered by it) is discarded, and a place is only ever
hidden once it varied in at least half of its route's pairs (shadow.compare.noise).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from shadow.compare import compare_replies
from shadow.compare.noise import NoiseModel
from shadow.compare.rules import ReplyRules
from shadow.mirror import MirrorLane
from shadow.upstream import Upstream, end_to_end
from shadow.verdict import Comparison, Verdict

_COMPARED = frozenset({Verdict.MATCH, Verdict.MISMATCH})
_NOT_FORWARDED = frozenset({"host", "content-length"})


class Calibrator:
    """Sends sampled safe exchanges to the primary's build again and learns their noise."""

    def __init__(self, *, model: NoiseModel, upstreams: dict[str, Upstream], lane: MirrorLane,
                 rules: ReplyRules, share: float, methods: Iterable[str],
                 marker: tuple[str, str], timeout: float, max_bytes: int,
                 on_pair: Callable[[str, str], None] = lambda route, method: None,
                 writes: Callable[[], tuple[int, int]] | None = None,
                 chance: Callable[[], float] = random.random) -> None:
        self.model = model
        self.upstreams = upstreams
        self.lane = lane
        self.rules = rules
        self.share = share
        self.methods = frozenset(m.upper() for m in methods)
        self.marker = marker
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.on_pair = on_pair
        self.writes = writes or (lambda: (0, 0))
        self._chance = chance

    def __call__(self, c: Comparison) -> None:
        """The verifier listener: maybe probe the exchange of `c` (never waits)."""
        ex = c.exchange
        if (c.verdict not in _COMPARED or ex.method not in self.methods
                or not c.primary.reply.ok or self.share <= 0 or self._chance() >= self.share):
            return
        upstream = self.upstreams.get(c.primary.backend)
        if upstream is None:
            return
        first = c.primary.reply
        route = f"{ex.method} {ex.route}"
        headers = [(k, v) for k, v in end_to_end(ex.headers)
                   if k.lower() not in _NOT_FORWARDED] + [self.marker]

        async def probe() -> None:
            sent, before = time.time(), self.writes()
            again = await upstream.fetch(ex.method, ex.target, headers, ex.body,
                                         timeout=self.timeout, max_bytes=self.max_bytes)
            if not again.ok or self.writes() != before or before[0] != before[1]:
                return  # no answer, or a write ran on the primary meanwhile
            # The second reply was served later: "now" stamps may trail by that much.
            lag = max(sent - ex.received_at, 0.0) + again.elapsed
            result = compare_replies(first, again, self.rules.at_lag(lag))
            self.model.observe(route, result.differences)
            self.on_pair(ex.route, ex.method)

        self.lane.submit(probe)
