"""Turn drained SQLite log rows and the row images read with them into RowChanges (pure).

A log row says which row changed (table code, operation, rowid or key, the key before)
and when; the image is what that row holds when the log is drained. So a row changed
again before the drain comes out with its image as of the drain, in every change that
names it; a row gone by then (deleted later, in the same drain) comes out with no image,
keyed by the key its later update or delete logged. The drain runs right after a write's
window closes, so this only matters for rows two requests change within that moment.

    parse_literals  the comma-joined `quote()` text a trigger logged -> values
    LogRow          one drained log row, its table resolved
    build_changes   LogRows + images -> RowChanges in write order
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shadow.rows.model import TableInfo
from shadow.rows.sqlite_schema import OPS, Layout
from shadow.verdict import RowChange

_LITERAL = re.compile(
    r"NULL|X'(?P<blob>[0-9A-Fa-f]*)'|'(?P<text>(?:[^']|'')*)'"
    r"|(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)")

Key = tuple[Any, ...]
Image = dict[str, Any]


def parse_literals(text: Any) -> Key:
    """The values of `quote(a)||','||quote(b)...` (exactly: text, integers, reals to the
    last bit, blobs as bytes, NULL); a bare integer or real is one value, None none.
    Raises ValueError for text no trigger writes."""
    if text is None:
        return ()
    if not isinstance(text, str):
        return (text,)
    values: list[Any] = []
    pos = 0
    while True:
        match = _LITERAL.match(text, pos)
        if match is None:
            raise ValueError(f"not a list of SQL literals at {pos}: {text[:80]!r}")
        if match["blob"] is not None:
            values.append(bytes.fromhex(match["blob"]))
        elif match["text"] is not None:
            values.append(match["text"].replace("''", "'"))
        elif match["num"] is not None:
            num = match["num"]
            values.append(float(num) if any(c in num for c in ".eE") else int(num))
        else:
            values.append(None)
        pos = match.end()
        if pos == len(text):
            return tuple(values)
        if text[pos] != ",":
            raise ValueError(f"not a list of SQL literals at {pos}: {text[:80]!r}")
        pos += 1


@dataclass(frozen=True, slots=True)
class LogRow:
    """One drained log row: `table` resolved from its code, `op` spelled out, `r` the
    rowid (or the quoted key of a WITHOUT ROWID row), `k` the key before (None where
    `r` gives it), `at` when."""

    seq: int
    table: str
    op: str
    r: Any
    k: Any
    at: float | None

    @classmethod
    def of(cls, row: Sequence[Any], table: str) -> LogRow:
        seq, code, r, k, at = row
        return cls(seq, table, OPS[code % 4], r, k, at)

    def locator(self, layout: Layout) -> Any:
        """What finds this row's image: its rowid, or its key tuple."""
        return self.r if layout.rowid is not None else parse_literals(self.r)

    def old_key(self, layout: Layout) -> Key:
        """The key the row had before an update or delete."""
        if layout.key_is_rowid:
            return (self.r if self.k is None else self.k,)
        return parse_literals(self.k)


def key_of(info: TableInfo, layout: Layout, locator: Any, image: Image | None) -> Key | None:
    """A row's key from its image or locator (None when neither tells it)."""
    if layout.key_is_rowid:
        return (locator,)
    if layout.rowid is None:
        return locator
    if image is None:
        return None
    return tuple(image.get(name) for name in info.key)


def build_changes(rows: Sequence[LogRow], tables: Mapping[str, TableInfo],
                  layouts: Mapping[str, Layout],
                  images: Mapping[str, Mapping[Any, Image]]) -> tuple[list[RowChange], int]:
    """RowChanges in log order, and how many log rows could not be turned into one (the
    table is gone, or a row gone by the drain left no key behind). An update that
    changed the key is a delete of the old key and an insert of the new one."""
    later: dict[int, Key] = {}
    pending: dict[tuple[str, Any], Key] = {}
    for row in reversed(rows):
        layout = layouts.get(row.table)
        if layout is None:
            continue
        spot = (row.table, row.r)
        if spot in pending:
            later[row.seq] = pending[spot]
        if row.op != "insert":
            pending[spot] = row.old_key(layout)
    changes: list[RowChange] = []
    lost = 0
    for row in rows:
        info, layout = tables.get(row.table), layouts.get(row.table)
        if info is None or layout is None:
            lost += 1
            continue
        if row.op == "delete":
            changes.append(RowChange(row.table, row.old_key(layout), "delete", None, None, row.at))
            continue
        locator = row.locator(layout)
        image = images.get(row.table, {}).get(locator)
        key = key_of(info, layout, locator, image) or later.get(row.seq)
        if key is None:
            lost += 1
            continue
        if row.op == "update":
            old = row.old_key(layout)
            if old != key:
                changes.append(RowChange(row.table, old, "delete", None, None, row.at))
                changes.append(RowChange(row.table, key, "insert", None, image, row.at))
                continue
        changes.append(RowChange(row.table, key, row.op, None, image, row.at))
    return changes, lost
