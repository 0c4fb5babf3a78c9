"""Builds the write path of a running proxy from its config: the hold and the shadow's
causality when writes are ordered, the attribution of rows (with outside writes) when both
backends have a database. Each part is wired to its metrics here, so the runtime only
starts and stops them.
"""

from __future__ import annotations

from collections.abc import Callable

from shadow.config import Config
from shadow.logs import Raised
from shadow.metrics import Metrics
from shadow.rows.live import RowState
from shadow.store import Store
from shadow.writes import Writes
from shadow.writes.attribution import Attribution
from shadow.writes.barrier import Barrier
from shadow.writes.causality import Causality
from shadow.writes.hold import Hold
from shadow.writes.outside import ROUTE as OUTSIDE_ROUTE
from shadow.writes.outside import OutsideWrites
from shadow.writes.outside import signature as outside_signature


async def start_writes(writes: Writes, *, cfg: Config, metrics: Metrics, rows: RowState | None,
                       store: Store, raised: Raised, primary: Callable[[], str]) -> None:
    """Fill `writes` with the parts `cfg` asks for and start the attribution of rows.
    `primary()` names the backend that serves clients now."""
    writes.barrier = Barrier(pending=writes.pending)
    if cfg.proxy.ordered_writes:
        writes.hold = Hold(limit=cfg.proxy.write_hold, drains=rows is not None,
                           on_wait=lambda outcome: metrics.write_hold.labels(outcome).inc())
        writes.causality = Causality(
            max_parked=cfg.mirror.queue_size,
            on_dropped=lambda reason: metrics.dropped.labels(reason).inc())
        metrics.parked.set_function(lambda: writes.causality.parked)
        metrics.shadow_writes_pending.set_function(lambda: writes.causality.pending)
    if rows is None:
        return

    def counted(backend: str, table: str, n: int) -> None:
        metrics.outside_writes.labels(cfg.label(backend), table).inc(n)
        store.record(signatures=[outside_signature(cfg.label(backend), table)],
                     exchange_id="", method="-", route=OUTSIDE_ROUTE, sample=None, weight=n)

    outside = OutsideWrites(limit=cfg.rows.max_outside_writes, diverge=rows.diverge,
                            on_count=counted)
    causality = writes.causality
    attribution = writes.attribution = Attribution(
        rows=rows, hold=writes.hold, outside=outside, max_group=cfg.rows.max_group,
        timeout=cfg.rows.attribution_timeout, tick=cfg.rows.drain_interval,
        raised=raised, primary=primary,
        on_counted=lambda how, n: metrics.rows_attributed.labels(how).inc(n),
        on_concluded=causality.release if causality is not None else None,
        on_expired=lambda wait: metrics.shadow_waits_expired.labels(wait).inc())
    if causality is not None:
        causality.keys_ready = attribution.keys_ready
    await attribution.start()
