"""The two halves of one exchange on their way to a Comparison.

A `Pair` joins the primary's and the shadow's replies of one exchange, whichever arrives
last, and (with row capture) what its group wrote on both sides. When all are in, the pair
is concluded on the next loop turn by its verifier (never inside the client's request
handler). Its `watch`, when the proxy keeps one, counts the writes that ran on each side
while its replies were being made (shadow.recheck; the proxy tells it when each side is
done).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from shadow.routes import RoutePolicy
from shadow.verdict import Exchange, Reply

if TYPE_CHECKING:
    from shadow.overlap import Watch
    from shadow.verifier import Verifier
    from shadow.writes.groups import GroupRows


class Pair:
    """The two halves of one exchange on their way to a Comparison."""

    __slots__ = ("exchange", "policy", "primary_backend", "shadow_backend", "primary",
                 "shadow", "skip_reason", "rows_expected", "rows", "shadow_window",
                 "watch", "_verifier", "_done")

    def __init__(self, verifier: Verifier, exchange: Exchange, policy: RoutePolicy,
                 primary_backend: str, shadow_backend: str) -> None:
        self._verifier = verifier
        self.exchange = exchange
        self.policy = policy
        self.primary_backend = primary_backend
        self.shadow_backend = shadow_backend
        self.primary: Reply | None = None
        self.shadow: Reply | None = None
        self.skip_reason = ""
        self.rows_expected = False
        self.rows: GroupRows | None = None
        self.shadow_window = (0.0, 0.0)
        self.watch: Watch | None = None
        self._done = False

    def expect_rows(self) -> None:
        """Row capture is on: wait for this exchange's group's rows too."""
        self.rows_expected = True

    def set_primary(self, reply: Reply, skip_reason: str = "") -> None:
        if self.primary is None:
            self.primary = reply
            self.skip_reason = self.skip_reason or skip_reason
            self._maybe_conclude()

    def set_rows(self, rows: GroupRows) -> None:
        """What this exchange's group wrote on both sides, compared (see shadow.writes)."""
        if self.rows is None:
            self.rows = rows
            self._maybe_conclude()

    def set_shadow(self, reply: Reply) -> None:
        if self.shadow is None:
            now = time.time()
            self.shadow_window = (now - reply.elapsed, now)
            if reply.ok:
                received = self.exchange.received_at
                self._verifier.lag.observe(self.shadow_window[0] - received, now - received)
            self.shadow = reply
            self._maybe_conclude()

    def drop(self, reason: str) -> None:
        """The shadow work was dropped (lane full, timeout, shutdown)."""
        if self.shadow is None:
            self.skip_reason = self.skip_reason or f"dropped_{reason}"
            self.shadow = Reply(0, (), b"", 0.0, error="dropped")
            self._maybe_conclude()

    def _maybe_conclude(self) -> None:
        if self.primary is None or self.shadow is None or self._done:
            return
        if self.rows_expected and self.rows is None:
            return
        self._done = True
        asyncio.get_running_loop().call_soon(self._verifier.conclude, self)
