"""A/A calibration: a share of safe requests sent once more to the primary's build.

A verifier listener. When an exchange with a safe method (GET and HEAD by default) has
been compared and the primary answered it, it is sent a second time to the build that
holds the primary role (to its `calibration_url`, a second instance of the build on the
same database, when one is configured: `upstreams` maps each backend to where its probes
go): every one while its route is still calibrating (fewer A/A pairs
than the model's `min_pairs`, so a cold start ends after a few requests of the route), a
sampled `share` of them afterwards. The probe goes through the mirror lane (so it is
bounded, timed out and never awaited by a client), and the two replies of that one build
are compared. What differs between them is noise for the route (shadow.compare.noise).
Routes whose policy keeps them from the shadow are never probed either: they were never
compared, so they never reach this listener. Nor is a route declared `writes = true`,
or one whose `calibrate = false` (`allowed`, by the route's policy). The probe carries
the shadow marker header,
like every request the proxy makes on its own.

Two replies of one build also differ when a write changed the data between them: such a
difference is no noise. A probe is discarded when a write ran on the primary at any moment
from the arrival of the exchange it repeats to the probe's reply (`quiet_since`: since
when no write has run there), and a place is only ever hidden once it varied in at least
half of its route's pairs (shadow.compare.noise).

A safe method is no promise that the app writes nothing: many audit a read, or every error
reply. Sent again, such a read would write again on the primary alone (rows no exchange
owns, that the shadow never gets, and that the next reply reading them shows as a
difference: an audit summary that differs for good) and would differ from its first reply
by its own write. So an exchange that wrote rows on either side, or whose route has been
seen writing there (`writes_rows`), is never sent again; nor is one that a write
overlapped on either side (`Comparison.overlapped`): its own rows may have been charged to
that write (a route not yet seen writing is no candidate for a change a write's window
also holds), so that it only looks as if it wrote nothing. Alone, a read owns every row
written meanwhile.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from shadow.compare import compare_replies
from shadow.compare.noise import NoiseModel
from shadow.compare.rules import ReplyRules
from shadow.mirror import MirrorLane
from shadow.routes import RoutePolicy, RouteTable
from shadow.upstream import Upstream, end_to_end
from shadow.verdict import Comparison, Exchange, Verdict

_COMPARED = frozenset({Verdict.MATCH, Verdict.MISMATCH})
_NOT_FORWARDED = frozenset({"host", "content-length"})


class Calibrator:
    """Sends sampled safe exchanges to the primary's build again and learns their noise."""

    def __init__(self, *, model: NoiseModel, upstreams: dict[str, Upstream], lane: MirrorLane,
                 rules: ReplyRules, share: float, methods: Iterable[str],
                 marker: tuple[str, str], timeout: float, max_bytes: int,
                 exchange_header: str = "",
                 allowed: Callable[[Exchange, str], bool] = lambda exchange, backend: True,
                 on_pair: Callable[[str, str], None] = lambda route, method: None,
                 quiet_since: Callable[[], float | None] = lambda: float("-inf"),
                 writes_rows: Callable[[str, str], bool] = lambda backend, route: False,
                 chance: Callable[[], float] = random.random) -> None:
        self.model = model
        self.upstreams = upstreams
        self.lane = lane
        self.rules = rules
        self.share = share
        self.methods = frozenset(m.upper() for m in methods)
        self.marker = marker
        self.dropped = not_forwarded(exchange_header)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.on_pair = on_pair
        self.quiet_since = quiet_since
        self.writes_rows = writes_rows
        self.allowed = allowed
        self._chance = chance

    def __call__(self, c: Comparison) -> None:
        """The verifier listener: maybe probe the exchange of `c` (never waits)."""
        ex = c.exchange
        if (c.verdict not in _COMPARED or ex.method not in self.methods
                or not c.primary.reply.ok or self.share <= 0
                or not self.allowed(ex, c.primary.backend)):
            return
        route = f"{ex.method} {ex.route}"
        if not self.model.calibrating(route) and self._chance() >= self.share:
            return
        backend = c.primary.backend
        upstream = self.upstreams.get(backend)
        if (upstream is None or c.overlapped or c.primary.rows
                or (c.shadow is not None and c.shadow.rows)
                or self.writes_rows(backend, ex.route)):
            return
        first = c.primary.reply
        headers = sent_again(ex, self.dropped, self.marker)

        async def probe() -> None:
            sent, quiet = time.time(), self.quiet_since()
            if quiet is None or quiet >= ex.received_at:
                return  # a write ran on the primary since the first request arrived
            again = await upstream.fetch(ex.method, ex.target, headers, ex.body,
                                         timeout=self.timeout, max_bytes=self.max_bytes)
            if not again.ok or self.quiet_since() != quiet:
                return  # no answer, or a write ran on the primary meanwhile
            # The second reply was served later: "now" stamps may trail by that much.
            lag = max(sent - ex.received_at, 0.0) + again.elapsed
            result = compare_replies(first, again, self.rules.at_lag(lag))
            self.model.observe(route, result.differences)
            self.on_pair(ex.route, ex.method)

        self.lane.submit(probe)


def not_forwarded(exchange_header: str) -> frozenset[str]:
    """The request headers a request the proxy sends on its own does not repeat: those of
    the connection, and the proxy's exchange id header (the copy is another exchange)."""
    return _NOT_FORWARDED | ({exchange_header.lower()} if exchange_header else frozenset())


def sent_again(ex: Exchange, dropped: frozenset[str],
               marker: tuple[str, str]) -> list[tuple[str, str]]:
    """The headers of `ex` as a request the proxy sends again carries them: its end-to-end
    headers but `dropped`, and the `marker` header."""
    return [(k, v) for k, v in end_to_end(ex.headers) if k.lower() not in dropped] + [marker]


def probe_filter(routes: RouteTable | None) -> Callable[[Exchange, str], bool]:
    """Whether an exchange may reach the primary's build a second time by its configured
    route's policy (RoutePolicy.may_calibrate: not `skip`, not `writes = true`, not
    `calibrate = false`); reads row capture saw writing are refused by the Calibrator."""

    def allowed(exchange: Exchange, backend: str) -> bool:
        path = exchange.target.partition("?")[0]
        policy = routes.configured(exchange.method, path) if routes is not None else None
        if policy is None:
            policy = RoutePolicy(template=exchange.route)
        return policy.may_calibrate(exchange.method)

    return allowed
