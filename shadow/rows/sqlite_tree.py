"""Row changes of one committed SQLite transaction, from the pages it wrote (pure logic
over page versions; the pages come from `sqlite_wal.WalLog`).

Every table is a b-tree. The tracker knows, for each captured table, its interior pages
and its leaf pages. A transaction that changed a row rewrote the leaf holding it (and,
when rows moved between pages or pages were freed, an interior page of the same tree,
so the tree is walked again). The rows of the leaves the transaction touched, as they
were before it and after it, give its changes: a key only before is a delete, only
after an insert, on both sides with other bytes an update; a row the b-tree merely moved
to another page is the same bytes on both sides and no change. So every write is seen,
the row SQLite's `INSERT OR REPLACE` deleted without firing a trigger included, with its
image before and after.

    RecordLayout   how a table's record maps to its columns (from the catalogue)
    Trees          the pages of every captured table; `changes(commit)` -> Change list
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shadow.rows.sqlite_pages import (INDEX_LEAF, TABLE_LEAF, Cell, FormatError, Page,
                                      cell_at, decode_record, leaf_cells)

Image = dict[str, Any]
PageAt = Callable[[int, int], bytes]
"""(page number, frame number) -> the page's bytes once that frame was written."""
VersionAt = Callable[[int, int], int]
"""(page number, frame number) -> which version of the page that is (its frame, 0 for
the database file's copy)."""
CACHED = 4096


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """Table `table` rooted at page `root`. `columns`: the image's columns; `stored`:
    where each sits in the record (None for a virtual generated column, never stored);
    `alias`: the column that is the rowid (stored as NULL); `real`: columns of REAL
    affinity (SQLite stores a whole REAL as an integer); `defaults`: the value of a column
    a record is too short for (added by ALTER TABLE after the row was written);
    `key_width`: how many leading record values are the key of a WITHOUT ROWID row
    (0 for a rowid table)."""

    table: str
    root: int
    columns: tuple[str, ...]
    stored: tuple[int | None, ...]
    alias: int | None
    real: frozenset[int]
    defaults: tuple[Any, ...]
    key_width: int = 0

    def image(self, rowid: int | None, values: list[Any]) -> Image:
        image = {}
        for i, name in enumerate(self.columns):
            at = self.stored[i]
            if i == self.alias:
                value = rowid
            elif at is None:
                value = None
            elif at < len(values):
                value = values[at]
            else:
                value = self.defaults[i]
            if i in self.real and isinstance(value, int):
                value = float(value)
            image[name] = value
        return image


@dataclass(frozen=True, slots=True)
class Change:
    """One row changed by a transaction: `locator` is its rowid (or WITHOUT ROWID key)."""

    table: str
    op: str
    locator: Any
    before: Image | None
    after: Image | None


class Trees:
    """The interior and leaf pages of each table in `layouts`, as of the last commit
    given to `changes()` (or the frame `build()` walked at)."""

    def __init__(self, page_at: PageAt, usable: int, encoding: str,
                 version_at: VersionAt) -> None:
        self.page_at = page_at
        self.version_at = version_at
        self._parsed: dict[tuple[int, int], Page] = {}
        self._slices: dict[tuple[int, int], tuple[int, frozenset[bytes]]] = {}
        self.usable = usable
        self.encoding = encoding
        self.layouts: dict[str, RecordLayout] = {}
        self._inner: dict[str, set[int]] = {}
        self._leaves: dict[str, set[int]] = {}
        self._owner: dict[int, str] = {}

    def build(self, layouts: Mapping[str, RecordLayout], frame: int,
              keep: Iterable[str] = ()) -> None:
        """Walk every table of `layouts` at `frame`; tables named in `keep` whose layout
        is unchanged keep what is known of them."""
        kept = {n for n in keep if n in self.layouts and self.layouts[n] == layouts.get(n)}
        self.layouts = dict(layouts)
        for name in list(self._inner):
            if name not in kept:
                self._forget(name)
        for name, layout in self.layouts.items():
            if name not in kept:
                self._inner[name], self._leaves[name] = self._walk(layout.root, frame)
                self._own(name)

    def catalogue(self, frame: int) -> dict[str, tuple[Any, ...]]:
        """The schema table as of `frame`: each table's name -> (root page, CREATE text)."""
        inner, leaves = self._walk(1, frame)
        found = {}
        for pgno in sorted(leaves):
            page = self._page(pgno, frame)
            for cell in page.cells if page.table else ():
                kind, name, _table, root, sql = (
                    decode_record(self._payload(cell, frame), self.encoding) + [None] * 5)[:5]
                if kind == "table":
                    found[name] = (root, sql)
        return found

    def forget_pages(self) -> None:
        """Drop the parsed pages kept (the log restarted: versions are numbered anew)."""
        self._parsed.clear()
        self._slices.clear()

    def _page(self, pgno: int, frame: int) -> Page:
        """Page `pgno` at `frame`, parsed once per version."""
        spot = (pgno, self.version_at(pgno, frame))
        page = self._parsed.get(spot)
        if page is None:
            if len(self._parsed) >= CACHED:
                self._parsed.clear()
            page = self._parsed[spot] = Page.parse(self.page_at(pgno, frame), pgno, self.usable)
        return page

    def changes(self, pages: frozenset[int], before: int, after: int) -> list[Change]:
        """The row changes of the transaction that wrote `pages` between frame `before`
        (exclusive) and `after` (its commit frame)."""
        touched = sorted({self._owner[p] for p in pages if p in self._owner})
        found: list[Change] = []
        for name in touched:
            layout = self.layouts[name]
            old_leaves = self._leaves[name]
            gone_or_changed = old_leaves & pages
            new_pages = gone_or_changed
            if self._inner[name] & pages or (
                    layout.root in pages
                    and self._leaf(layout.root, after)[0] not in (TABLE_LEAF, INDEX_LEAF)):
                inner, leaves = self._walk(layout.root, after)
                gone_or_changed = gone_or_changed | (old_leaves - leaves)
                new_pages = (leaves & pages) | (leaves - old_leaves)
                self._forget(name)
                self._inner[name], self._leaves[name] = inner, leaves
                self._own(name)
            old_cells = self._cells(layout, gone_or_changed, before)
            new_cells = self._cells(layout, new_pages, after)
            old = self._rows(layout, old_cells - new_cells, before)
            new = self._rows(layout, new_cells - old_cells, after)
            found += self._compare(layout, old, new, before, after)
        return found

    def _compare(self, layout: RecordLayout, old: dict[Any, Cell], new: dict[Any, Cell],
                 before: int, after: int) -> list[Change]:
        changes: list[Change] = []
        for locator in sorted(old.keys() | new.keys(), key=_order):
            was, now = old.get(locator), new.get(locator)
            if was is not None and now is not None:
                old_bytes, new_bytes = self._payload(was, before), self._payload(now, after)
                if old_bytes == new_bytes:
                    continue
                changes.append(Change(layout.table, "update", locator,
                                      self._image(layout, was, old_bytes),
                                      self._image(layout, now, new_bytes)))
            elif was is not None:
                changes.append(Change(layout.table, "delete", locator,
                                      self._image(layout, was, self._payload(was, before)), None))
            elif now is not None:
                changes.append(Change(layout.table, "insert", locator, None,
                                      self._image(layout, now, self._payload(now, after))))
        return sorted(changes, key=lambda change: _OPS_FIRST[change.op])

    def _image(self, layout: RecordLayout, cell: Cell, payload: bytes) -> Image:
        return layout.image(cell.rowid, decode_record(payload, self.encoding))

    def _cells(self, layout: RecordLayout, pages: Iterable[int], frame: int) -> set[bytes]:
        """The cells of the leaves among `pages` at `frame` (see `leaf_cells`)."""
        kind = INDEX_LEAF if layout.key_width else TABLE_LEAF
        cells: set[bytes] = set()
        for pgno in pages:
            found = self._leaf(pgno, frame)
            if found[0] == kind:
                cells |= found[1]
        return cells

    def _leaf(self, pgno: int, frame: int) -> tuple[int, frozenset[bytes]]:
        """`leaf_cells` of page `pgno` at `frame`, once per version."""
        spot = (pgno, self.version_at(pgno, frame))
        found = self._slices.get(spot)
        if found is None:
            if len(self._slices) >= CACHED:
                self._slices.clear()
            found = self._slices[spot] = leaf_cells(self.page_at(pgno, frame), pgno,
                                                    self.usable)
        return found

    def _rows(self, layout: RecordLayout, cells: Iterable[bytes], frame: int) -> dict[Any, Cell]:
        """`cells` parsed, by rowid (or WITHOUT ROWID key)."""
        kind = INDEX_LEAF if layout.key_width else TABLE_LEAF
        rows: dict[Any, Cell] = {}
        for raw in cells:
            cell = cell_at(raw, kind, self.usable)
            if layout.key_width:
                values = decode_record(self._payload(cell, frame), self.encoding)
                rows[tuple(values[:layout.key_width])] = cell
            else:
                rows[cell.rowid] = cell
        return rows

    def _payload(self, cell: Cell, frame: int) -> bytes:
        """A cell's whole payload, its overflow chain followed at `frame`."""
        if not cell.overflow:
            return cell.local
        parts, left, nxt, seen = [cell.local], cell.size - len(cell.local), cell.overflow, 0
        while nxt and left > 0:
            seen += 1
            if seen > 1 + cell.size // max(1, self.usable - 4):
                raise FormatError(f"overflow chain from page {cell.overflow} loops")
            page = self.page_at(nxt, frame)
            (nxt,) = struct.unpack_from(">I", page, 0)
            chunk = page[4:self.usable][:left]
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _walk(self, root: int, frame: int) -> tuple[set[int], set[int]]:
        """(interior pages, leaf pages) of the b-tree at `root` as of `frame`."""
        inner: set[int] = set()
        leaves: set[int] = set()
        todo = [root]
        while todo:
            pgno = todo.pop()
            if pgno in inner or pgno in leaves or pgno < 1:
                continue
            page = self._page(pgno, frame)
            if page.leaf or page.kind == 0:
                leaves.add(pgno)
                continue
            inner.add(pgno)
            first = self._page(page.children[0], frame)
            if first.leaf:  # a b-tree's leaves are all at one depth: siblings are leaves
                leaves.update(page.children)
            else:
                todo.extend(page.children)
        return inner, leaves

    def _own(self, name: str) -> None:
        for pgno in self._inner[name] | self._leaves[name]:
            self._owner[pgno] = name

    def _forget(self, name: str) -> None:
        for pgno in self._inner.pop(name, set()) | self._leaves.pop(name, set()):
            if self._owner.get(pgno) == name:
                del self._owner[pgno]


_OPS_FIRST = {"delete": 0, "update": 1, "insert": 2}
"""Within one table of one transaction: what left first, then what changed, then what
came (a key an update moved never shows twice at once)."""


def _order(locator: Any) -> tuple[int, Any]:
    """Rowids in order; WITHOUT ROWID keys by their text (mixed types never compare)."""
    return (0, locator) if isinstance(locator, int) else (1, repr(locator))
