"""The net effect of one exchange on each row, and what diff_rows needs to know of it (pure).

    NetChange       one row's net change: existed before?, images, when, no-op?
    net_changes     RowChanges -> one NetChange per row, per folded table name
    truncates       a TRUNCATE on one side stands for the other side's deletes
    untouched       columns an update left as they were on both sides
    parents_first   tables ordered so that parents are paired before their children
    key_text        a key as difference paths spell it

Folding: insert + update is an insert of the final image, insert + delete is nothing, an
update whose before image shows it changed nothing the rules compare is marked `noop`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shadow.compare.bridge import ValueKind, values_equal
from shadow.rows.keymap import Key, freeze
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.verdict import RowChange


@dataclass(slots=True)
class NetChange:
    """The net effect of one exchange on one row; `at` is when the database made the
    last of its changes (None when the capture does not record it)."""

    table: str
    key: Key
    existed: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    noop: bool = False
    at: float | None = None

    @property
    def op(self) -> str:
        if not self.existed:
            return "insert"
        if self.key == ():
            return "truncate"
        return "update" if self.after is not None else "delete"


KindOf = Callable[[str, str], ValueKind]


def net_changes(changes: Sequence[RowChange], rules: RowRules,
                kind_of: KindOf | None = None) -> dict[str, list[NetChange]]:
    """Fold changes into one net change per row, per folded table name, in order of each
    row's first change; tables the rules leave out are dropped, and updates whose before
    image shows they change nothing the rules compare (e.g. a timestamp moved within its
    tolerance) are marked `noop`; `kind_of(table, column)` says how a column is compared
    (default: as it is)."""
    rows: dict[tuple[str, Key], NetChange] = {}
    for change in changes:
        if not rules.covers(change.table):
            continue
        slot = (fold(change.table), freeze(change.key))
        net = rows.get(slot)
        if net is None:
            rows[slot] = NetChange(change.table, slot[1], change.op != "insert",
                                   change.before, change.after, at=change.at)
        else:
            net.after = change.after
            net.at = change.at
    kind_of = kind_of or (lambda table, column: ValueKind.ANY)
    out: dict[str, list[NetChange]] = {}
    for (table, _key), net in rows.items():
        if net.existed and net.after is not None and net.before is not None:
            net.noop = _unchanged(net, kind_of, rules)
        if not net.existed and net.after is None:
            continue
        out.setdefault(table, []).append(net)
    return out


def _unchanged(net: NetChange, kind_of: KindOf, rules: RowRules) -> bool:
    """True when an update's before and after images agree on every compared column."""
    before, after = net.before or {}, net.after or {}
    if before == after:
        return True
    for column in before.keys() | after.keys():
        rule = rules.rule(net.table, column)
        if rule.ignore:
            continue
        kind = rule.kind or kind_of(net.table, column)
        equal, _ = values_equal(before.get(column), after.get(column), kind,
                                tolerance=rule.tolerance, empty_is_null=rule.empty_is_null)
        if not equal:
            return False
    return True


def key_text(key: Key) -> str:
    """A key as it appears in a difference path: `7`, `"a"`, `1,"x"`."""
    return ",".join(json.dumps(v, default=str, ensure_ascii=False) for v in key)


def untouched(p: NetChange, s: NetChange) -> set[str]:
    """Columns an update left as they were on both sides: what this exchange wrote is
    compared, not what an earlier one did (that was compared when it was written)."""
    if p.op != "update" or s.op != "update" or p.before is None or s.before is None:
        return set()
    s_before = {fold(c): v for c, v in s.before.items()}
    s_after = {fold(c): v for c, v in (s.after or {}).items()}
    return {fold(c) for c, v in (p.after or {}).items()
            if p.before.get(c, _ABSENT) == v
            and s_before.get(fold(c), _ABSENT) == s_after.get(fold(c), _ABSENT)}


_ABSENT = object()


def parents_first(tables: list[str], infos: Mapping[str, TableInfo]) -> list[str]:
    """`tables` in their order, except that a table comes after the tables its foreign
    keys point at (so their new pairs are known when its rows are paired by content)."""
    present = set(tables)
    done: dict[str, None] = {}

    def visit(table: str, path: frozenset[str]) -> None:
        if table in done or table in path:
            return
        info = infos.get(table)
        for parent in (info.references.values() if info else ()):
            if fold(parent) in present and fold(parent) != table:
                visit(fold(parent), path | {table})
        done[table] = None

    for table in tables:
        visit(table, frozenset())
    return list(done)


def truncates(p_rows: list[NetChange], s_rows: list[NetChange]
               ) -> tuple[list[NetChange], list[NetChange]]:
    """A TRUNCATE on one side stands for the deletes of the same table on the other
    (SQLite has no TRUNCATE: its `DELETE FROM t` deletes row by row): both are dropped.
    Which rows went is not known on the truncating side, so that is all it can say."""
    for mine, theirs, flip in ((p_rows, s_rows, False), (s_rows, p_rows, True)):
        if (any(r.op == "truncate" for r in mine) and not any(r.op == "truncate" for r in theirs)
                and any(r.op == "delete" for r in theirs)):
            mine = [r for r in mine if r.op != "truncate"]
            theirs = [r for r in theirs if r.op != "delete"]
            return (theirs, mine) if flip else (mine, theirs)
    return p_rows, s_rows
