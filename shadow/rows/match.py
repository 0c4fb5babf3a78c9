"""One change of each side, compared the way the row diff compares rows (pure: no I/O).

    ChangeMatcher.bucket(change, primary)  where a change waits for its twin
    ChangeMatcher.same(primary, shadow)    whether two changes are twins
    ChangeMatcher.paired(primary, shadow)  the key pair two twin inserts teach
    ChangeMatcher.twins(primary, shadow)   the key pairs inserts drained so far tell

The change-by-change verification of `shadow.rows.stream` needs, for a change that has
just been drained, a bucket in which its twin would be found: for an insert its content
(every column both sides' tables hold, less ignored ones and the surrogate key, foreign
keys of the primary side through the key map); for an update or a delete the row it
touched (its key on the shadow's side, through the key map); so does an insert into a
table whose key the app chooses (a natural key, a row per user): an upsert is an insert
on one side and an update on the other. Values compared by meaning
(an instant, a salted hash, a column with a tolerance) only say that they are there; the
twins found in a bucket are then compared value by value through the row diff
(`same`), which reads a "now" stamp against the moment each side made its change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shadow.compare.bridge import canonical, pair_kind
from shadow.compare.moments import instant
from shadow.compare.salted import shape
from shadow.rows.diff import row_differ
from shadow.rows.keymap import KeyMap, Pair, freeze
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.rows.netchange import NetChange
from shadow.rows.pairing import CompareColumn, token
from shadow.rows.sequences import as_anchor, surrogate_key
from shadow.rows.stamps import RowStamps
from shadow.verdict import RowChange


class _Remembered:
    """A row's earlier write moments, read but not added to while candidates are tried."""

    def __init__(self, stamps: RowStamps | None) -> None:
        self.stamps = stamps

    def earlier(self, table: str, key: Any) -> tuple:
        return self.stamps.earlier(table, key) if self.stamps is not None else ()

    def wrote(self, *args: Any) -> None:
        return None


def net(change: RowChange) -> NetChange:
    """One change as the row diff's net change of its row."""
    return NetChange(change.table, freeze(change.key), change.op != "insert", change.before,
                     change.after, at=change.at)


class ChangeMatcher:
    """Buckets and twin tests for the changes of one primary and one shadow backend."""

    def __init__(self, primary_tables: Mapping[str, TableInfo],
                 shadow_tables: Mapping[str, TableInfo], rules: RowRules, keymap: KeyMap,
                 stamps: RowStamps | None = None,
                 on_pair: Callable[[list[Pair]], None] = lambda pairs: None) -> None:
        self.on_pair = on_pair
        self.p_tables = {fold(n): t for n, t in primary_tables.items()}
        self.s_tables = {fold(n): t for n, t in shadow_tables.items()}
        self.rules = rules
        self.keymap = keymap
        self.stamps = stamps
        self._check = row_differ(primary_tables, shadow_tables, rules, keymap,
                                 _Remembered(stamps))  # type: ignore[arg-type]
        self._columns: dict[str, tuple[CompareColumn, ...] | None] = {}

    def bucket(self, change: RowChange, primary: bool) -> tuple | None:
        """Where `change` waits for its twin; None when its table is not compared."""
        table = fold(change.table)
        if not self.rules.covers(change.table):
            return None
        key = freeze(change.key)
        info = self.p_tables.get(table)
        if change.op == "insert" and surrogate_key(info, [key]) is not None:
            return self._content(table, change, primary)
        if primary and key:
            key = self._shadow_key(table, info, key)
        return ("delete" if change.op == "delete" else "row", table, key)

    def _shadow_key(self, table: str, info: TableInfo | None, key: tuple) -> tuple:
        """A primary row's key on the shadow: through the key map, or through its parent's
        pairs when the key is one foreign key (a row per user, say)."""
        mapped = self.keymap.shadow_key(table, key)
        if mapped is not None:
            return freeze(mapped)
        refs = {fold(c): t for c, t in info.references.items()} if info else {}
        parent = refs.get(fold(info.key[0])) if info is not None and len(info.key) == 1 else None
        if parent is not None and len(key) == 1:
            found = self.keymap.shadow_key(parent, key)
            if found is not None:
                return freeze(found)
        return key

    def same(self, primary: RowChange, shadow: RowChange) -> bool:
        """True when the two changes hold the same values, as the row diff compares them."""
        check = self._check
        check.differences.clear()
        check.compare(fold(primary.table), net(primary), net(shadow))
        return not check.differences

    def paired(self, primary: RowChange, shadow: RowChange) -> Pair | None:
        """Learn the key pair of two twin inserts (None for other changes), and remember
        both moments of the write for the row's later stamps. A surrogate key's anchor
        moves to the highest ids paired on each side: pairs come in no particular order,
        and the next insert follows the latest ids."""
        table = fold(primary.table)
        p_key, s_key = freeze(primary.key), freeze(shadow.key)
        if self.stamps is not None:
            self.stamps.wrote(table, p_key, primary.at, shadow.at)
        if primary.op != "insert":
            return None
        before = as_anchor(self.keymap.anchor(table))
        self.keymap.learn(table, p_key, s_key)  # which moves the anchor to this pair
        if surrogate_key(self.p_tables.get(table), [p_key, s_key]) is not None:
            top_p, top_s = (p_key[0], s_key[0]) if before is None else (
                max(p_key[0], before[0]), max(s_key[0], before[1]))
            self.keymap.set_anchor(table, (top_p,), (top_s,))
        pair = (primary.table, p_key, s_key)
        self.on_pair([pair])
        return pair

    def twins(self, primary: Iterable[RowChange], shadow: Iterable[RowChange]) -> list[Pair]:
        """The key pairs (table, primary key, shadow key) of the inserts among these
        changes that found exactly one twin: their content bucket holds one insert of
        each side, and the two are the same. Nothing is learnt: this is what a group's
        rows drained so far already say about its ids, before the group is compared."""
        buckets: dict[tuple, tuple[list[RowChange], list[RowChange]]] = {}
        for side, changes in ((0, primary), (1, shadow)):
            for change in changes:
                if change.op != "insert":
                    continue
                bucket = self.bucket(change, primary=side == 0)
                if bucket is not None and bucket[0] == "insert":
                    buckets.setdefault(bucket, ([], []))[side].append(change)
        return [(p[0].table, freeze(p[0].key), freeze(s[0].key))
                for p, s in buckets.values()
                if len(p) == 1 == len(s) and self.same(p[0], s[0])]

    def _content(self, table: str, change: RowChange, primary: bool) -> tuple | None:
        columns = self._compared(table)
        if columns is None:
            return None
        surrogate = surrogate_key(self.p_tables[table], [freeze(change.key)])
        image = change.after or {}
        out: list[tuple] = []
        for column in columns:
            if surrogate is not None and fold(column.primary) == fold(surrogate):
                continue
            value = image.get(column.primary if primary else column.shadow)
            if primary and column.parent is not None and value is not None:
                found = self.keymap.shadow_key(column.parent, (value,))
                value = value if found is None else found[0]
            if column.rule.tolerance > 0 or instant(value) is not None or shape(value):
                out.append(("by meaning",))
                continue
            form, _ = canonical(value, column.kind, empty_is_null=column.rule.empty_is_null)
            out.append(token(form))
        return ("insert", table, *out)

    def _compared(self, table: str) -> tuple[CompareColumn, ...] | None:
        """The columns both sides' tables hold, less ignored ones (cached per table)."""
        if table in self._columns:
            return self._columns[table]
        p_info, s_info = self.p_tables.get(table), self.s_tables.get(table)
        columns = None
        if p_info is not None and s_info is not None:
            s_names = {fold(c.name): c.name for c in s_info.columns}
            refs = {fold(c): t for c, t in p_info.references.items()}
            found = []
            for column in p_info.columns:
                name = fold(column.name)
                rule = self.rules.rule(table, column.name)
                if name not in s_names or rule.ignore:
                    continue
                kind = rule.kind or pair_kind(p_info.kind(column.name),
                                              s_info.kind(s_names[name]))
                found.append(CompareColumn(column.name, s_names[name], kind, rule,
                                           refs.get(name)))
            columns = tuple(found)
        self._columns[table] = columns
        return columns
