"""How each table's rows are stored, read from the catalogue (for `sqlite_tree`), and
how a row's change is keyed.

A rowid table's record holds its columns in declaration order, less VIRTUAL generated
ones, the INTEGER PRIMARY KEY (the rowid itself) as NULL. A WITHOUT ROWID table's record
holds its key columns first, in key order, then the others. A column added by ALTER
TABLE is missing from rows written before it: they read as its default. SQLite keeps a
whole number in a REAL column as an integer and turns it back into a real on reading.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from shadow.rows.model import TableInfo
from shadow.rows.sqlite_schema import Layout, Rows, columns_type
from shadow.rows.sqlite_tree import Change, RecordLayout
from shadow.verdict import RowChange

_ROOTS = "SELECT name, rootpage FROM sqlite_master WHERE type = 'table'"
_COLUMNS = "SELECT name, type, pk, hidden, dflt_value FROM pragma_table_xinfo(?) ORDER BY cid"
VIRTUAL_GENERATED, HIDDEN = 2, 1


def affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type (its five rules, in their order)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def record_layouts(rows: Rows, infos: Mapping[str, TableInfo],
                   found_by: Mapping[str, Layout]) -> dict[str, RecordLayout]:
    """The RecordLayout of every table of `infos` (`found_by`: their Layouts; tables
    with no root page are left out)."""
    roots = dict(rows(_ROOTS, ()))
    layouts = {}
    for name, info in infos.items():
        root = roots.get(name)
        if not root:
            continue
        found = [r for r in rows(_COLUMNS, (name,)) if r[3] != HIDDEN]
        without_rowid = found_by[name].rowid is None
        keyed = sorted((pk, i) for i, (_n, _t, pk, _h, _d) in enumerate(found) if pk)
        kept = [i for i, r in enumerate(found) if r[3] != VIRTUAL_GENERATED]
        if without_rowid:
            order = [i for _pk, i in keyed] + [i for i in kept if not found[i][2]]
        else:
            order = kept
        position = {column: at for at, column in enumerate(order)}
        alias = None
        if not without_rowid and len(keyed) == 1 and \
                columns_type(info.columns, found[keyed[0][1]][0]) == "INTEGER":
            alias = keyed[0][1]
        layouts[name] = RecordLayout(
            table=name, root=root,
            columns=tuple(r[0] for r in found),
            stored=tuple(position.get(i) for i in range(len(found))),
            alias=alias,
            real=frozenset(i for i, r in enumerate(found) if affinity(r[1] or "") == "REAL"),
            defaults=tuple(_default(rows, r[4]) for r in found),
            key_width=len(keyed) if without_rowid else 0)
    return layouts


def _default(rows: Rows, expression: str | None) -> Any:
    """The value of a column default (a constant: ALTER TABLE allows no other), or None."""
    if expression is None:
        return None
    try:
        return rows(f"SELECT {expression}", ())[0][0]
    except sqlite3.Error:
        return None


def row_changes(change: Change, info: TableInfo, key_is_rowid: bool, at: float,
                since: float | None, mark: tuple[str, int] | None = None) -> list[RowChange]:
    """One row's change as RowChanges keyed by the table's key (the rowid when
    `key_is_rowid`): an update that moved the key is a delete and an insert. `at`,
    `since` and `mark` place it in time and in the log (see `RowChange`)."""
    def key(image: dict[str, Any] | None) -> tuple[Any, ...]:
        if key_is_rowid or image is None:
            return change.locator if isinstance(change.locator, tuple) else (change.locator,)
        return tuple(image.get(k) for k in info.key)

    table = change.table
    if change.op == "update":
        old, new = key(change.before), key(change.after)
        if old != new:
            return [RowChange(table, old, "delete", change.before, None, at, since, mark),
                    RowChange(table, new, "insert", None, change.after, at, since, mark)]
        return [RowChange(table, new, "update", change.before, change.after, at, since, mark)]
    image = change.after if change.op == "insert" else change.before
    return [RowChange(table, key(image), change.op, change.before, change.after, at, since,
                      mark)]
