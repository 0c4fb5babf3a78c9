"""Runs the rechecks of mismatched reads that raced writes (shadow.recheck says which
qualify and how a recheck ends).

A hook of the verifier: `offer` takes a qualifying mismatch out of the normal recording
(A/A calibration has heard of it by then) and holds it in a bounded place, beside the
sample the store would keep of it, built then. While anything is held, a timer (every
`tick` seconds) records the reads whose wait is over as they were, and, at a moment when
no write runs on either side and none waits for the shadow, starts the rechecks of the
oldest held reads (at most `concurrency` at once and `per_second` a second) through the
mirror lane: the read goes again to the build that was its primary, then to the build
that was its shadow (ids written as its shadow copy had them), each carrying the marker
header, each bounded by the lane's queue and timeout. No client waits on any of it; each
read the primary gets again is one read more on production, as an A/A probe is.

Each held read is recorded exactly once, through `publish` (with `held` set to the seconds
it waited): as a match with the reason `race`; as `raced` when its recheck ended unsettled
and `shadow.recheck.raced_why` says so; or as the mismatch it was. Its sample then carries
the recheck's evidence (`recheck`: outcome, why, writes overlapped, the fresh pair's
differences as the sample shows them). A recheck that a write moved waits for the next
quiet moment while its wait lasts; the timer looks at once when the last write on a side
ends, so a short write-free gap between two writes is not missed. A read whose builds
changed roles while it waited (a mode change) is never sent again. At shutdown, after the
lane has drained, `flush` records what is still held.

A mismatch that qualifies for `raced` but may not be sent again (it wrote rows: an audited
read) is recorded `raced` at once by `offer`. Every raced sample says why (`raced`: why,
writes overlapped) and carries the verdict `raced`. The signatures of the mismatches
recorded that no write overlapped, or that a recheck confirmed (the verifier's listener
`heard`), are remembered, at most MAX_MISMATCHED, so a difference already seen without a
race to explain it is never recorded as raced.

No read is sent again before its route has been seen reading without writing (`Proof`,
from the comparisons `offer` sees): an audited read that overlapped a write may have had
its audit row charged to that write, and sent again it would write a second audit row on
both builds, one the client never asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shadow.calibrate import not_forwarded, sent_again
from shadow.flow import for_shadow
from shadow.marker import Marker
from shadow.metrics import Metrics
from shadow.mirror import MirrorLane
from shadow.overlap import Clocks
from shadow.recheck import (BUSY, CONFIRMED, FAILED, FULL, MODE, MOVED, OUTCOMES, RACE,
                            RACED_WHY, STOPPED, UNSETTLED, Budget, Proof, Waiter, Waiting,
                            evidence, outcome, raced_why, refusal)
from shadow.routes import RoutePolicy
from shadow.settings_compare import RecheckSettings
from shadow.upstream import Upstream
from shadow.verdict import Comparison, Difference, Exchange, Reply, Verdict

if TYPE_CHECKING:
    from shadow.pair import Pair
    from shadow.rows.ids import IdTranslator

MAX_SHOWN = 20
"""Differences of a confirming recheck kept in the sample, at most."""
MAX_MISMATCHED = 10_000
"""Signatures of recorded mismatches remembered (the oldest forgotten first)."""
_DROPS = {"queue_full": FULL, "timeout": FAILED}

Compare = Callable[[Exchange, RoutePolicy, str, Reply, Reply, float], tuple[Difference, ...]]
"""(exchange, policy, shadow backend, fresh primary reply, fresh shadow reply, seconds
between them) -> differences under the original pair's rules."""


@dataclass(frozen=True, slots=True)
class Recheck:
    """One held read: its `comparison` (a mismatch), what sending it again needs, the
    `sample` the store would keep, how many writes it `overlapped`, `since` (monotonic)."""

    comparison: Comparison
    policy: RoutePolicy
    primary_backend: str
    shadow_backend: str
    sample: dict[str, Any]
    overlapped: int
    since: float


class Rechecker:
    """The held reads of one verifier and the rechecks that settle them."""

    def __init__(self, *, settings: RecheckSettings, clocks: Clocks, quiet: Callable[[], bool],
                 lane: MirrorLane, upstreams: dict[str, Upstream], marker: Marker,
                 exchange_header: str, timeout: float, max_bytes: int,
                 methods: frozenset[str], allowed: Callable[[Exchange, str], bool],
                 writes_rows: Callable[[str, str], bool],
                 ids: Callable[[], IdTranslator | None], compare: Compare,
                 shown: Callable[[Difference], dict[str, Any]],
                 publish: Callable[[Comparison, dict[str, Any]], None], metrics: Metrics,
                 raised: Callable[[str, BaseException], None],
                 roles: Callable[[], tuple[str, str | None]],
                 clock: Callable[[], float] = time.monotonic, tick: float = 0.05) -> None:
        self.clocks = clocks
        self.roles = roles
        self.quiet = quiet
        self.lane = lane
        self.upstreams = upstreams
        self.marker = marker
        self.dropped = not_forwarded(exchange_header)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.methods = methods
        self.allowed = allowed
        self.writes_rows = writes_rows
        self.ids = ids
        self.compare = compare
        self.shown = shown
        self._publish = publish
        self.metrics = metrics
        self.raised = raised
        self.clock = clock
        self.tick = tick
        self.concurrency = settings.concurrency
        self.waiting = Waiting(most=settings.max_held, wait=settings.max_wait, clock=clock)
        self.budget = Budget(settings.per_second, clock)
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.race_writes = 0
        self.raced = dict.fromkeys(RACED_WHY, 0)
        self.raced_writes = 0
        self.mismatched: dict[str, None] = {}
        self.proof = Proof()
        self._timer: asyncio.Handle | None = None
        self._soon = False
        clocks.primary.idle = clocks.shadow.idle = self._idle
        metrics.rechecks_held.set_function(lambda: len(self.waiting))

    def __len__(self) -> int:
        return len(self.waiting)

    def offer(self, c: Comparison, pair: Pair | None,
              sample: Callable[[], dict[str, Any]]) -> bool:
        """Hold `c` for its recheck when it qualifies; `sample()` builds its sample. False
        when it is to be recorded at once, as usual."""
        watch = pair.watch if pair is not None else None
        if pair is None or watch is None or c.shadow is None:
            return False
        ex = c.exchange
        self.proof.saw(c)
        why = refusal(c, methods=self.methods, may_resend=self.allowed(ex, c.primary.backend),
                      writing=any(self.writes_rows(b, ex.route)
                                  for b in (c.primary.backend, c.shadow.backend)),
                      overlapped=watch.writes, proven=self.proof.proven(ex.method, ex.route))
        if why is not None:
            raced = raced_why(c, refused=why, unsettled=False, overlapped=watch.writes,
                              methods=self.methods, mismatched=self.mismatched)
            if raced is None:
                return False
            self._publish_raced(c, sample(), raced, watch.writes)
            return True
        held = Recheck(c, pair.policy, c.primary.backend, c.shadow.backend, sample(),
                       watch.writes, self.clock())
        if self.waiting.add(held) is None:
            self._record(held, UNSETTLED, FULL)
        else:
            self._arm()
        return True

    def status(self) -> dict[str, Any]:
        """How many reads are held, how their rechecks ended, how many writes the reads
        found to be races had overlapped, and the reads recorded `raced` (by why, and the
        writes they overlapped)."""
        return {"held": len(self.waiting), **self.counts, "race_writes": self.race_writes,
                "raced": sum(self.raced.values()), "raced_why": dict(self.raced),
                "raced_writes": self.raced_writes}

    def heard(self, c: Comparison) -> None:
        """Verifier listener: remember the signatures of a recorded mismatch that no write
        overlapped (one a recheck confirmed is remembered when it is recorded). One that
        overlapped writes (a row difference, a type change kept it a mismatch) proves
        nothing of its other differences: a race may explain them, and remembered they
        would turn every later race at the same place into a mismatch."""
        if c.verdict is Verdict.MISMATCH and not c.overlapped:
            self._remember(c)

    def _remember(self, c: Comparison) -> None:
        for sig in c.signatures:
            self.mismatched.pop(sig, None)
            self.mismatched[sig] = None
        while len(self.mismatched) > MAX_MISMATCHED:
            del self.mismatched[next(iter(self.mismatched))]

    def flush(self) -> None:
        """Record every held read as it was (the proxy stops; the lane has drained)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self.waiting.flush():
            self._record(waiter.item, UNSETTLED, STOPPED)

    def _arm(self) -> None:
        if self._timer is None and len(self.waiting):
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._due)

    def _idle(self) -> None:
        """The last write on one side ended: look for a quiet moment on the next turn of
        the loop rather than at the next tick."""
        try:
            if self._soon or not len(self.waiting) or not self.quiet():
                return
            self._soon = True
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_soon(self._due)
        except Exception as exc:  # a write's end on the request path must not fail
            self.raised("recheck", exc)

    def _due(self) -> None:
        self._timer = None
        self._soon = False
        try:
            for waiter in self.waiting.due():
                self._record(waiter.item, UNSETTLED, BUSY)
            room = self.concurrency - self.waiting.running
            if room > 0 and self.quiet():
                for waiter in self.waiting.ready(room):
                    if self.budget.take():
                        self.lane.submit(lambda w=waiter: self._run(w),
                                         on_drop=lambda reason, w=waiter: self._dropped(w, reason))
                    else:
                        self.waiting.back(waiter)
        except Exception as exc:
            self.raised("recheck", exc)
        self._arm()

    async def _run(self, waiter: Waiter) -> None:
        """One recheck, in the mirror lane: both builds asked again, the replies compared."""
        held: Recheck = waiter.item
        if self.roles() != (held.primary_backend, held.shadow_backend):
            if self.waiting.done(waiter):  # the builds' roles changed since it was served
                self._record(held, UNSETTLED, MODE)
            return
        if not self.quiet():  # a write began since the timer saw none
            self.waiting.back(waiter)
            return
        try:
            mark = self.clocks.mark()
            ex = held.comparison.exchange
            headers = sent_again(ex, self.dropped, self.marker.for_exchange(ex.id))
            sent = time.time()
            first = await self.upstreams[held.primary_backend].fetch(
                ex.method, ex.target, headers, ex.body, timeout=self.timeout,
                max_bytes=self.max_bytes)
            second = None
            if first.ok:
                target, body = for_shadow(self.ids(), ex.route, ex.target, ex.body,
                                          held.shadow_backend)
                second = await self.upstreams[held.shadow_backend].fetch(
                    ex.method, target, headers, body, timeout=self.timeout,
                    max_bytes=self.max_bytes)
            during = self.clocks.overlapped(mark)
            differences: tuple[Difference, ...] = ()
            if second is not None and first.ok and second.ok and not during:
                differences = self.compare(ex, held.policy, held.shadow_backend, first, second,
                                           time.time() - sent)
            result, why = outcome(first, second, differences, during)
        except Exception as exc:
            self.raised("recheck", exc)
            result, why, differences = UNSETTLED, FAILED, ()
        if why == MOVED and not waiter.settled and self.clock() < waiter.deadline:
            self.waiting.back(waiter)  # a write ran meanwhile: the next quiet moment
            self._arm()
            return
        if self.waiting.done(waiter):
            self._record(held, result, why, differences)

    def _dropped(self, waiter: Waiter, reason: str) -> None:
        """The lane dropped a recheck (full, timed out, closing): recorded as it was."""
        if self.waiting.done(waiter):
            self._record(waiter.item, UNSETTLED, _DROPS.get(reason, STOPPED))

    def _record(self, held: Recheck, result: str, why: str = "",
                differences: tuple[Difference, ...] = ()) -> None:
        c, ex = held.comparison, held.comparison.exchange
        self.counts[result] += 1
        self.metrics.reads_rechecked.labels(ex.route, ex.method, result).inc()
        if why:
            self.metrics.recheck_unsettled.labels(why).inc()
        waited = max(round(self.clock() - held.since, 3), 0.001)
        sample = held.sample
        if result == RACE:
            self.race_writes += held.overlapped
            c = replace(c, differences=(), verdict=Verdict.MATCH, reason=RACE, signatures=(),
                        normalised=c.normalised + len(c.differences), held=waited)
        else:
            shown = [self.shown(d) for d in differences[:MAX_SHOWN]] if result == CONFIRMED else []
            if result == CONFIRMED:  # the same difference in a quiet moment: no race
                self._remember(c)
            sample = {**sample, "recheck": evidence(result, why, held.overlapped, shown)}
            c = replace(c, held=waited)
            if result == UNSETTLED:
                raced = raced_why(c, refused=None, unsettled=True, overlapped=held.overlapped,
                                  methods=self.methods, mismatched=self.mismatched)
                if raced is not None:
                    self._publish_raced(c, sample, raced, held.overlapped)
                    return
        try:
            self._publish(c, sample)
        except Exception as exc:
            self.raised("recheck", exc)

    def _publish_raced(self, c: Comparison, sample: dict[str, Any], why: str,
                       overlapped: int) -> None:
        """Record `c` as `raced` (unverified), its sample saying why and how many writes
        it overlapped."""
        self.raced[why] += 1
        self.raced_writes += overlapped
        sample = {**sample, "verdict": str(Verdict.RACED),
                  "raced": {"why": why, "writes_overlapped": overlapped}}
        try:
            self._publish(replace(c, verdict=Verdict.RACED, reason=why), sample)
        except Exception as exc:
            self.raised("recheck", exc)
