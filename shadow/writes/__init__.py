"""Writes in production as they would run without shadow, and whose rows are whose.

    hold.py         the bounded wait a write may spend on the primary for exact rows
    windows.py      each exchange's time on each backend; where a drained change may belong
    groups.py       exchanges whose changes cannot be told apart, compared as a whole
    causality.py    the shadow replays the primary's concurrency, keeping happens-before
    attribution.py  drains, windows and groups in a running proxy; verdicts to the pairs
    outside.py      changes nobody can own: counted, reported, never charged to a route
    barrier.py      mode changes wait (bounded) for the shadow's writes in flight
    assembly.py     builds these parts from the config and wires their metrics

There is no global write lock: writes reach the primary as they arrive. `Writes` bundles
the parts the proxy uses; each is None when its feature is off.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadow.writes.attribution import Attribution
from shadow.writes.barrier import Barrier
from shadow.writes.causality import Causality
from shadow.writes.hold import Hold


@dataclass(slots=True)
class Writes:
    """The write-path parts of one proxy: the hold and causality (ordered writes) and
    the attribution of rows (row capture on both backends)."""

    hold: Hold | None = None
    causality: Causality | None = None
    attribution: Attribution | None = None
    barrier: Barrier | None = None

    def pending(self) -> str:
        """The shadow writes not done yet, in words ('' when none): what a mode change
        waits for besides the writes on the primary."""
        parts = []
        if self.causality is not None and self.causality.pending:
            parts.append(f"{self.causality.pending} write(s) not done on the shadow")
        if self.attribution is not None and self.attribution.writes_waiting:
            parts.append(f"{len(self.attribution.writes_waiting)} write(s) whose rows are "
                         "not compared yet")
        return "; ".join(parts)
