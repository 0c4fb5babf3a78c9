"""The verifier's held verdicts: the comparisons of the fresh-value learner's cold start,
kept aside until their places are decided (see shadow.compare.held for the decisions).

What is kept of a held comparison is no more than its sample keeps: the sample the store
would take of it is built when it is held (shadow.privacy; with the backends' log lines of
the exchange, read then), and the comparison itself keeps no body (request or replies), no
request header, no row, its route for its target, and each difference's values only as
the sample shows them. Listeners hear of a held comparison once, when it is settled, with
`held` set to the seconds it waited; A/A calibration, a probe of the verifier, heard of
it when it concluded, bodies and all.

Its wait ends on the loop's timer (every `tick` seconds while anything is held), and at
shutdown `flush` records what is still held as it stands. The gauge
`shadow_verdicts_held` shows how many are held; `shadow_held_settled_total` how they ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from shadow.compare.held import HeldVerdicts, Settled
from shadow.compare.noise import NoiseModel
from shadow.metrics import Metrics
from shadow.privacy import SampleBuilder
from shadow.verdict import Comparison, Difference, Observation, Verdict


@dataclass(frozen=True, slots=True)
class Kept:
    """What is kept of one held comparison: `comparison` without bodies or raw values,
    `sample` as the store would keep it, `since` when it was held (monotonic)."""

    comparison: Comparison
    sample: dict[str, Any]
    since: float


class Holding:
    """Held comparisons of one verifier; `publish(comparison, sample)` records one."""

    def __init__(self, *, noise: NoiseModel, wait: float, most: int, metrics: Metrics,
                 privacy: SampleBuilder,
                 publish: Callable[[Comparison, dict[str, Any]], None],
                 signatures: Callable[[Comparison], tuple[str, ...]],
                 raised: Callable[[str, BaseException], None],
                 clock: Callable[[], float] = time.monotonic, tick: float = 1.0) -> None:
        self.noise = noise
        self.metrics = metrics
        self.privacy = privacy
        self.verdicts = HeldVerdicts(wait=wait, most=most, decide=noise.decision, clock=clock)
        self._publish = publish
        self._signatures = signatures
        self.raised = raised
        self.clock = clock
        self.tick = tick
        self._timer: asyncio.TimerHandle | None = None
        metrics.verdicts_held.set_function(lambda: len(self.verdicts))

    def __len__(self) -> int:
        return len(self.verdicts)

    def hold(self, c: Comparison, sample: Callable[[], dict[str, Any]]) -> bool:
        """Hold `c` when it is a mismatch whose every difference waits on a fresh place;
        `sample()` builds its sample. False when it is to be recorded at once."""
        fresh = self.noise.fresh
        if c.verdict is not Verdict.MISMATCH or fresh is None:
            return False
        ex = c.exchange
        route, status = f"{ex.method} {ex.route}", c.primary.reply.status
        places = self.noise.waiting(route, c.differences, status)
        if places is None:
            return False
        kept = Kept(self._stripped(c), sample(), self.clock())
        for settled in self.verdicts.offer(kept, route, status, kept.comparison.differences,
                                           places):
            self._record(settled)
        self._arm()
        return True

    def settle(self) -> None:
        """Record the held comparisons that the latest evidence decided."""
        fresh = self.noise.fresh
        if fresh is None or not fresh.touched:
            return
        touched = set(fresh.touched)
        fresh.touched.clear()
        if len(self.verdicts):
            for settled in self.verdicts.settle(touched):
                self._record(settled)

    def flush(self) -> None:
        """Record every held comparison as it stands (the proxy stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for settled in self.verdicts.flush():
            self._record(settled)

    def _arm(self) -> None:
        if self._timer is None and len(self.verdicts):
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._due)

    def _due(self) -> None:
        self._timer = None
        try:
            for settled in self.verdicts.due():
                self._record(settled)
        except Exception as exc:
            self.raised("held", exc)
        self._arm()

    def _record(self, settled: Settled) -> None:
        kept: Kept = settled.held.item
        c = kept.comparison
        hidden = len(settled.hidden)
        if hidden:
            fresh = self.noise.fresh
            for place in settled.hidden:
                if fresh is not None:
                    fresh.count_hidden(place)
            self.metrics.noise.labels(c.exchange.route, c.exchange.method).inc(hidden)
        c = replace(c, differences=settled.kept, normalised=c.normalised + hidden,
                    verdict=Verdict.MISMATCH if settled.kept else Verdict.MATCH,
                    held=max(round(self.clock() - kept.since, 3), 0.001))
        c = replace(c, signatures=self._signatures(c))
        self.metrics.held_settled.labels(settled.why).inc()
        try:
            self._publish(c, kept.sample)
        except Exception as exc:
            self.raised("held", exc)

    def _stripped(self, c: Comparison) -> Comparison:
        """`c` with no body, request header or row, its route for its target, and its
        differences' values as a sample shows them."""
        def shown(d: Difference) -> Difference:
            stored = self.privacy.difference(d)
            return replace(d, primary=stored["primary"], shadow=stored["shadow"],
                           detail=stored["detail"])

        def bare(obs: Observation) -> Observation:
            return replace(obs, reply=replace(obs.reply, body=b""), rows=())

        ex = replace(c.exchange, target=c.exchange.route, body=b"", headers=())
        return replace(
            c, exchange=ex, primary=bare(c.primary),
            shadow=bare(c.shadow) if c.shadow is not None else None,
            differences=tuple(shown(d) for d in c.differences))
