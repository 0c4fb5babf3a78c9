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
from collections.abc import Iterable
from typing import Any

from shadow.rows.keymap import Key, freeze
from shadow.rows.model import fold
from shadow.verdict import RowChange

Moments = tuple[float, float]
"""(when the primary's database made a change, when the shadow's did)."""
PER_ROW = 4
"""Writes remembered per row, newest first: an insert and the edits after it."""
IMAGES = 10_000
"""Rows whose last images a backend's RecentImages remembers (in memory, never stored)."""


class _RowHistory:
    """A bounded memory of (table, primary key) -> its last `PER_ROW` entries, newest
    first; the least recently written rows are forgotten past `max_rows`."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._rows: OrderedDict[tuple[str, Key], tuple[Any, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def _entries(self, table: str, key: Key) -> tuple[Any, ...]:
        return self._rows.get((fold(table), freeze(key)), ())

    def _push(self, table: str, key: Key, entry: Any) -> None:
        row = (fold(table), freeze(key))
        kept = self._rows.pop(row, ())
        self._rows[row] = (entry, *kept)[:PER_ROW]
        while len(self._rows) > self.max_rows:
            self._rows.popitem(last=False)

    def _forget(self, table: str, key: Key) -> None:
        self._rows.pop((fold(table), freeze(key)), None)


class RowStamps(_RowHistory):
    """A bounded memory of (table, primary key) -> its latest writes' moments."""

    def __init__(self, max_rows: int = 100_000) -> None:
        super().__init__(max_rows)

    def earlier(self, table: str, key: Key) -> tuple[Moments, ...]:
        """The moments of the row's remembered writes, newest first."""
        return self._entries(table, key)

    def wrote(self, table: str, key: Key, primary_at: float | None,
              shadow_at: float | None) -> None:
        """One write of a paired row, compared now."""
        if primary_at is not None and shadow_at is not None:
            self._push(table, key, (primary_at, shadow_at))


class RecentImages(_RowHistory):
    """What one backend's last few writes of each row left, newest first, as its drains
    delivered them (in commit order): bounded, in memory only.

    A capture that reads pages, not statements (SQLite's write-ahead log), cannot show an
    update that stored the values the row already held (the same stamp within the same
    second writes no byte), while the other database shows it. Such an update on one
    side only is no difference when it leaves the row as this side held it then."""

    def __init__(self, max_rows: int = IMAGES) -> None:
        super().__init__(max_rows)

    def add(self, changes: Iterable[RowChange]) -> None:
        for change in changes:
            if change.after is None:
                self._forget(change.table, change.key)
            else:
                self._push(change.table, change.key, (change.after, change.at))

    def images(self, table: str, key: Key) -> tuple[tuple[dict[str, Any], float | None], ...]:
        """(image, when its database made it) of the row's remembered writes."""
        return self._entries(table, key)
