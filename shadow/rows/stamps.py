"""When each paired row was written on each side: the moments an old stamp is read against.

A row image holds stamps its earlier writes made: `created_at` from its insert, an
`updated_at` from the last edit. Compared by meaning (shadow.compare.moments), such a
stamp must be read against the moments of the write that made it, not of the write
being compared now: an insert the shadow replayed five seconds late and an update it
replayed at once leave `created_at` five seconds apart relative to the update. So the
moments of each paired row's recent writes on both sides are kept, bounded, and a
timestamp that does not match relative to this write is tried against them.
"""

from __future__ import annotations

from collections import OrderedDict

from shadow.rows.keymap import Key, freeze
from shadow.rows.model import fold

Moments = tuple[float, float]
"""(when the primary's database made a change, when the shadow's did)."""
PER_ROW = 4
"""Writes remembered per row, newest first: an insert and the edits after it."""


class RowStamps:
    """A bounded memory of (table, primary key) -> its latest writes' moments."""

    def __init__(self, max_rows: int = 100_000) -> None:
        self.max_rows = max_rows
        self._rows: OrderedDict[tuple[str, Key], tuple[Moments, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def earlier(self, table: str, key: Key) -> tuple[Moments, ...]:
        """The moments of the row's remembered writes, newest first."""
        return self._rows.get((fold(table), freeze(key)), ())

    def wrote(self, table: str, key: Key, primary_at: float | None,
              shadow_at: float | None) -> None:
        """One write of a paired row, compared now; the least recently written rows are
        forgotten past `max_rows`."""
        if primary_at is None or shadow_at is None:
            return
        row = (fold(table), freeze(key))
        kept = self._rows.pop(row, ())
        self._rows[row] = ((primary_at, shadow_at), *kept)[:PER_ROW]
        while len(self._rows) > self.max_rows:
            self._rows.popitem(last=False)
