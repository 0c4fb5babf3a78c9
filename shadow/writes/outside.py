"""Outside writes: changes in a change log that no proxied exchange can own.

A cron job, an admin script, writes made while the proxy was down (everything already in
the log at start-up): they are counted per backend and table, exported, shown by
`shadow status` and kept as one entry per backend and table in the mismatch browser; no
route is charged with them. Beyond `limit` changes in all, the shadow is marked diverged:
the two databases no longer hold the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shadow.verdict import RowChange

KIND = "outside_write"
ROUTE = "(outside writes)"


def signature(label: str, table: str) -> tuple[str, str, str, str, str]:
    """The mismatch browser's entry for outside writes to `table` on the backend `label`:
    (signature, method, route, kind, path), charged to no route."""
    return (f"- {ROUTE} {KIND} {label}.{table}", "-", ROUTE, KIND, f"{label}.{table}")


class OutsideWrites:
    """Counts of outside writes, per backend and table, since start."""

    def __init__(self, *, limit: int, diverge: Callable[[str], Any],
                 on_count: Callable[[str, str, int], None] | None = None) -> None:
        self.limit = limit
        self._diverge = diverge
        self._on_count = on_count or (lambda backend, table, n: None)
        self.counts: dict[str, dict[str, int]] = {}
        self.total = 0

    def add(self, backend: str, changes: list[RowChange], *, when: str) -> None:
        """Report `changes` (made on `backend`, `when`: 'at start-up' or 'while running')."""
        if not changes:
            return
        tables: dict[str, int] = {}
        for change in changes:
            tables[change.table] = tables.get(change.table, 0) + 1
        side = self.counts.setdefault(backend, {})
        for table, n in tables.items():
            side[table] = side.get(table, 0) + n
            self._on_count(backend, table, n)
        before = self.total
        self.total += len(changes)
        if before <= self.limit < self.total:
            summary = ", ".join(f"{t} {n}" for t, n in sorted(tables.items()))
            self._diverge(f"{self.total} outside writes on {backend} ({when}: {summary})")

    def status(self) -> dict[str, Any]:
        return {"total": self.total, "limit": self.limit,
                "by_backend": {b: dict(sorted(t.items())) for b, t in self.counts.items()}}
