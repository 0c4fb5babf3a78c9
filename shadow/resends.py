"""The requests the proxy sends again on its own, built from the config and hooked to the
verifier: A/A probes (shadow.calibrate), which send a safe read once more to the primary's
build to learn its noise, and rechecks (shadow.rechecker), which send a mismatched read
that raced writes once more to both builds. Both go through the mirror lane, carry the
marker header, and never re-send a route that A/A policy keeps from a second request
(`skip`, `writes = true`, `calibrate = false`) or that was seen writing rows. Each opens a
window in row attribution on the build it goes to (`Resent`): a read sent again may still
write, on a path its first send did not take (a session that has expired since answers
401 and audits it), and that row is then its own, neither an outside write nor another
exchange's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from shadow.calibrate import Calibrator, probe_filter
from shadow.compare.rules import ReplyRules
from shadow.marker import Marker
from shadow.recheck import SAFE
from shadow.rechecker import Rechecker
from shadow.upstream import Upstream
from shadow.verdict import Reply
from shadow.writes import Writes
from shadow.writes.attribution import Attribution

if TYPE_CHECKING:
    from shadow.app import Runtime


class Resent:
    """`upstream` of `backend`, whose every request opens and closes a window of its own
    in `attribution` (see `Attribution.resent`)."""

    def __init__(self, upstream: Upstream, backend: str, attribution: Attribution) -> None:
        self.upstream = upstream
        self.backend = backend
        self.attribution = attribution

    async def fetch(self, *args: Any, **kwargs: Any) -> Reply:
        window = self.attribution.resent(self.backend)
        try:
            return await self.upstream.fetch(*args, **kwargs)
        finally:
            self.attribution.close(window, self.backend)


def resent(upstreams: dict[str, Upstream], writes: Writes) -> dict[str, Any]:
    """`upstreams` as requests sent again reach them: in a window of their own on each
    backend with row capture."""
    attribution = writes.attribution
    if attribution is None:
        return dict(upstreams)
    return {backend: Resent(upstream, backend, attribution) if backend in attribution.sides
            else upstream for backend, upstream in upstreams.items()}


def quiet_since(writes: Writes) -> float | None:
    """Since when no write has run on the primary (None: one runs now), for A/A."""
    return writes.barrier.quiet_since if writes.barrier is not None else float("-inf")


def writes_rows(writes: Writes, backend: str, route: str) -> bool:
    """Whether exchanges of `route` have been seen writing rows on `backend`."""
    attribution = writes.attribution
    side = attribution.sides.get(backend) if attribution is not None else None
    return side is not None and route in side.writing


def attach_resends(rt: Runtime, rules: ReplyRules) -> None:
    """Hook the A/A calibrator to `rt.verifier` as a probe, and the rechecker as its
    `recheck` unless `[compare.recheck] enabled = false`."""
    cfg, metrics, writes, verifier = rt.config, rt.metrics, rt.writes, rt.verifier
    allowed = probe_filter(rt.routes)
    verifier.probes.append(Calibrator(
        model=rt.noise, upstreams=resent(rt.probes, writes), lane=rt.lane, rules=rules,
        share=cfg.noise.share, methods=cfg.noise.methods,
        marker=(cfg.mirror.marker_header, cfg.mirror.marker_value),
        timeout=cfg.mirror.timeout, max_bytes=cfg.mirror.max_reply_bytes,
        exchange_header=cfg.proxy.exchange_header,
        on_pair=lambda route, method: metrics.calibration_pairs.labels(route, method).inc(),
        quiet_since=lambda: quiet_since(writes),
        writes_rows=lambda backend, route: writes_rows(writes, backend, route),
        allowed=allowed))
    settings = cfg.compare.recheck
    if not settings.enabled:
        return
    causality = writes.causality
    rows, rewrite = rt.rows, cfg.rows.rewrite_ids
    verifier.recheck = Rechecker(
        settings=settings, clocks=rt.clocks,
        quiet=lambda: rt.clocks.quiet() and (causality is None or causality.pending == 0),
        lane=rt.lane, upstreams=resent(rt.upstreams, writes),
        marker=Marker(cfg.mirror.marker_header, cfg.mirror.marker_value,
                      os.environ.get(cfg.mirror.marker_secret_env) or None),
        exchange_header=cfg.proxy.exchange_header, timeout=cfg.mirror.timeout,
        max_bytes=cfg.mirror.max_reply_bytes,
        methods=SAFE, allowed=allowed,
        writes_rows=lambda backend, route: writes_rows(writes, backend, route),
        ids=lambda: rows.ids if rows is not None and rewrite else None,
        compare=verifier.fresh_differences, shown=rt.privacy.difference,
        publish=verifier.publish_held, metrics=metrics, raised=rt.raised,
        roles=lambda: (rt.modes.current.primary, rt.modes.current.shadow))
    verifier.listeners.append(verifier.recheck.heard)
