"""Compare the rows two backends changed for one exchange (pure: no I/O).

    diff_rows(primary, shadow, ...) -> RowDiff

Each side's RowChanges are first folded to their net effect per row (`shadow.rows.netchange`:
insert + update is an insert of the final image, insert + delete is nothing, an update
that changed nothing is nothing). Rows are then paired per table, in this order:

1. through the key map: a primary key already paired with a shadow key;
2. inserts left on both sides, by content (`shadow.rows.pairing`: exact first, then the
   closest, whatever order each side wrote them in); each such pair is learnt in the key
   map and returned in `new_pairs`. Its keys are checked against the table's anchor
   (`shadow.rows.sequences`): a key that breaks the established offset (a burnt
   sequence value) is one difference, and the inserts that follow it at the new offset
   are not; an insert on one side only moves the offset and is its one difference;
3. the same key on both sides (rows that existed before, updated or deleted).

Tables are paired parents first, so a foreign key to a row inserted in the same exchange
is translated through its new pair. The diff is the same for one exchange and for the
union of a group's changes (several tables, each side in its own order).

A primary row left unpaired is `row_missing` (the shadow lost a write), a shadow row left
unpaired is `row_extra`, unless it is an update known to change nothing the rules compare
(its before image says so): such a row is compared when the other side changed the row
too, and dropped otherwise. A capture that logs no before image (SQLite) makes every
update a real one, so the same no-op update on both sides still pairs and matches.
Paired rows are compared column by column through the dialect bridge (for an update
whose before images both sides logged, the columns it changed on either side), with the pair
kind of both declared types and the column rules; a column holding a foreign key to a
paired table is translated through the key map first. Key columns are not compared as
values: the pairing stands for them. A timestamp that differs
is compared once more by meaning (shadow.compare.moments): relative to the moment each
database made the change, so each side stamping rows with its own "now" is not a
difference; a stamp an earlier write of the row made (`created_at` in an update's image)
is also read against that write's moments (shadow.rows.stamps). A salted password hash is compared by its scheme and parameters
(shadow.compare.salted): a fresh salt on each side is not a difference, a weaker cost or
a password stored in the clear is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shadow.compare.bridge import ValueKind, pair_kind, values_equal
from shadow.compare.moments import same_moment, same_second, stamped_later
from shadow.compare.salted import same_scheme
from shadow.rows.keymap import KeyMap, Pair
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.rows.netchange import (NetChange, key_text, net_changes, parents_first, truncates,
                                   untouched)
from shadow.rows.pairing import CompareColumn, Content, pair_inserts
from shadow.rows.sequences import (Anchor, as_anchor, follow, is_int, key_detail,
                                   surrogate_key)
from shadow.rows.stamps import Moments, RecentImages, RowStamps
from shadow.verdict import Difference, Kind, RowChange


@dataclass(frozen=True, slots=True)
class RowDiff:
    """The row differences of one exchange, how many column values the bridge had to
    normalise to find them equal, and the key pairs learnt (table, primary, shadow)."""

    differences: tuple[Difference, ...]
    normalised: int = 0
    new_pairs: list[Pair] = field(default_factory=list)


class _Differ:
    """The state of one diff_rows call."""

    def __init__(self, primary_tables: Mapping[str, TableInfo],
                 shadow_tables: Mapping[str, TableInfo], rules: RowRules,
                 keymap: KeyMap, stamps: RowStamps | None = None,
                 recent: tuple[RecentImages | None, RecentImages | None] = (None, None)) -> None:
        self.stamps = stamps
        self.recent = recent
        self.p_tables = {fold(n): t for n, t in primary_tables.items()}
        self.s_tables = {fold(n): t for n, t in shadow_tables.items()}
        self.rules = rules
        self.keymap = keymap
        self.differences: list[Difference] = []
        self.normalised = 0
        self.new_pairs: list[Pair] = []

    def pair(self, table: str, p_rows: list[NetChange],
             s_rows: list[NetChange]) -> list[tuple[NetChange, NetChange]]:
        """Pair one table's rows; record missing and extra rows; learn new pairs."""
        s_by_key = {s.key: s for s in s_rows}
        used: set[int] = set()
        pairs: list[tuple[NetChange, NetChange]] = []
        left: list[NetChange] = []
        for p in p_rows:
            mapped = self.keymap.shadow_key(table, p.key)
            s = s_by_key.get(mapped) if mapped is not None else None
            if s is not None and id(s) not in used and not p.op == s.op == "insert":
                used.add(id(s))
                pairs.append((p, s))
            else:  # two new rows pair by content, whatever was learnt of them early
                left.append(p)
        s_inserts = [s for s in s_rows if s.op == "insert" and id(s) not in used]
        p_inserts = [p for p in left if p.op == "insert"]
        surrogate = surrogate_key(self.p_tables.get(table),
                                  [r.key for r in (*p_inserts, *s_inserts)])
        new, _, _ = pair_inserts(p_inserts, s_inserts,
                                 self.content(table, p_inserts, s_inserts, surrogate))
        positional = set()
        anchor = as_anchor(self.keymap.anchor(table))
        for p, s in new:
            used.add(id(s))
            positional.add(id(p))
            pairs.append((p, s))
            if surrogate is None:
                self.check_new_key(table, p, s)
            self.keymap.learn(table, p.key, s.key)
            self.new_pairs.append((p.table, p.key, s.key))
        missing = []
        for p in (p for p in left if id(p) not in positional):
            s = s_by_key.get(p.key)
            claimed = self.keymap.primary_key(table, p.key)
            mapped = self.keymap.shadow_key(table, p.key)
            if (s is not None and id(s) not in used and claimed in (None, p.key)
                    and mapped in (None, p.key)):
                used.add(id(s))
                pairs.append((p, s))
            elif not p.noop and not self.as_before(table, p, primary=True):
                missing.append(p)
                self.add(Kind.ROW_MISSING, p, p.after if p.after is not None else p.before,
                         None, f"{p.op} on the primary only")
        extra = [s for s in s_rows if id(s) not in used and not s.noop
                 and not self.as_before(table, s, primary=False)]
        for s in extra:
            self.differences.append(Difference(
                Kind.ROW_EXTRA, f"{s.table}[{key_text(s.key)}]", None,
                s.after if s.after is not None else s.before, f"{s.op} on the shadow only"))
        if surrogate is not None:
            self.follow_sequence(table, surrogate, anchor, new,
                                 [p.key[0] for p in missing if p.op == "insert"],
                                 [s.key[0] for s in extra if s.op == "insert"])
        return pairs

    def as_before(self, table: str, row: NetChange, *, primary: bool) -> bool:
        """Whether `row`, an update on one side only, leaves the row as one of the other
        side's recent writes left it, compared by the same rules: no difference in what
        the databases hold (see `RecentImages`: an update that stored the same bytes is
        invisible to a capture that reads pages)."""
        recent = self.recent[1] if primary else self.recent[0]
        if row.op != "update" or recent is None:
            return False
        key = (self.keymap.shadow_key(table, row.key) if primary
               else self.keymap.primary_key(table, row.key)) or row.key
        for image, at in recent.images(table, key):
            probe = _Differ({}, {}, self.rules, self.keymap)
            probe.p_tables, probe.s_tables = self.p_tables, self.s_tables
            other = NetChange(table, key, True, None, image, at=at)
            probe.compare(table, *((row, other) if primary else (other, row)))
            if not probe.differences:
                return True
        return False

    def content(self, table: str, p_rows: list[NetChange], s_rows: list[NetChange],
                surrogate: str | None) -> Content:
        """What inserted rows of `table` are paired on: the columns both sides' images
        hold, less ignored ones and the surrogate key."""
        if not p_rows or not s_rows:
            return Content((), self.translate)
        p_info, s_info = self.p_tables.get(table), self.s_tables.get(table)
        refs = {fold(c): t for c, t in p_info.references.items()} if p_info else {}
        s_cols = {fold(c): c for c in s_rows[0].after or {}}
        columns = []
        for col in p_rows[0].after or {}:
            name = fold(col)
            rule = self.rules.rule(table, col)
            if name not in s_cols or rule.ignore or (surrogate and name == fold(surrogate)):
                continue
            kind = rule.kind or pair_kind(_kind(p_info, col), _kind(s_info, s_cols[name]))
            columns.append(CompareColumn(col, s_cols[name], kind, rule, refs.get(name)))
        return Content(columns, self.translate)

    def translate(self, parent: str, value: Any) -> Any:
        """The shadow's key for primary key `value` of table `parent`, else `value`."""
        found = self.keymap.shadow_key(parent, (value,))
        return value if found is None else found[0]

    def follow_sequence(self, table: str, name: str, anchor: Anchor | None,
                        new: list[tuple[NetChange, NetChange]], missing: list[int],
                        extra: list[int]) -> None:
        """One difference per new shadow key that breaks the table's id sequence (from
        `anchor`, where it stood before this exchange); the anchor moves past this
        exchange's new, missing and extra rows."""
        by_shadow = {s.key[0]: p for p, s in new}
        unexpected, moved = follow(anchor, [(p.key[0], s.key[0]) for p, s in new],
                                   missing, extra)
        if self.rules.rule(table, name).ignore:
            unexpected = []
        for shadow_key, expected in unexpected:
            p = by_shadow[shadow_key]
            self.differences.append(Difference(
                Kind.ROW_CHANGED, f"{p.table}[{key_text(p.key)}].{name}", p.key[0], shadow_key,
                key_detail(expected)))
        if moved is not None:
            self.keymap.set_anchor(table, (moved[0],), (moved[1],))

    def check_new_key(self, table: str, p: NetChange, s: NetChange) -> None:
        """One difference per key column of a new pair that breaks the expected key."""
        if len(p.key) != len(s.key):
            return
        p_info, s_info = self.p_tables.get(table), self.s_tables.get(table)
        names = p_info.key if p_info and len(p_info.key) == len(p.key) else ()
        refs = {fold(c): t for c, t in p_info.references.items()} if p_info else {}
        anchor = self.keymap.anchor(table)
        for i, (pv, sv) in enumerate(zip(p.key, s.key, strict=True)):
            name = names[i] if names else f"key{i}"
            if self.rules.rule(p.table, name).ignore:
                continue
            expected = pv
            parent = refs.get(fold(name))
            translated = self.keymap.shadow_key(parent, (pv,)) if parent else None
            if translated is not None:
                expected = translated[0]
            elif anchor is not None and all(is_int(v) for v in (pv, anchor[0][i], anchor[1][i])):
                expected = pv + anchor[1][i] - anchor[0][i]
            if expected == sv:
                continue
            s_name = s_info.key[i] if s_info and i < len(s_info.key) else name
            kind = pair_kind(_kind(p_info, name), _kind(s_info, s_name))
            equal, normalised = values_equal(expected, sv, kind)
            if equal:
                self.normalised += int(normalised)
                continue
            self.differences.append(Difference(
                Kind.ROW_CHANGED, f"{p.table}[{key_text(p.key)}].{name}", pv, sv,
                key_detail(expected)))

    def compare(self, table: str, p: NetChange, s: NetChange) -> None:
        """Differences between the final images of one pair of rows."""
        if p.after is None or s.after is None:
            if p.after is not None or s.after is not None:
                gone = "the primary" if p.after is None else "the shadow"
                self.add(Kind.ROW_CHANGED, p, p.after, s.after, f"{gone} deleted the row")
            return
        p_info, s_info = self.p_tables.get(table), self.s_tables.get(table)
        earlier = ()
        if self.stamps is not None:
            earlier = self.stamps.earlier(table, p.key)
            self.stamps.wrote(table, p.key, p.at, s.at)
        skip = {fold(c) for info in (p_info, s_info) if info for c in info.key}
        skip |= untouched(p, s)
        refs = {fold(c): t for c, t in p_info.references.items()} if p_info else {}
        s_cols = {fold(c): c for c in s.after}
        seen = set()
        for col, pv in p.after.items():
            name = fold(col)
            seen.add(name)
            if name in skip or self.rules.rule(p.table, col).ignore:
                continue
            if name not in s_cols:
                self.add(Kind.ROW_CHANGED, p, pv, None, "column only on the primary", col)
                continue
            self.compare_value(p, s, col, pv, s.after[s_cols[name]], p_info, s_info,
                               refs.get(name), earlier)
        for name, col in s_cols.items():
            if name not in seen and name not in skip and not self.rules.rule(p.table, col).ignore:
                self.add(Kind.ROW_CHANGED, p, None, s.after[col], "column only on the shadow", col)

    def compare_value(self, p: NetChange, s: NetChange, col: str, pv: Any, sv: Any,
                      p_info: TableInfo | None, s_info: TableInfo | None,
                      parent: str | None, earlier: tuple[Moments, ...] = ()) -> None:
        rule = self.rules.rule(p.table, col)
        kind = rule.kind or pair_kind(_kind(p_info, col), _kind(s_info, col))
        expected = pv
        if parent is not None and pv is not None:
            translated = self.keymap.shadow_key(parent, (pv,))
            if translated is not None:
                expected = translated[0]
        equal, normalised = values_equal(expected, sv, kind, tolerance=rule.tolerance,
                                         empty_is_null=rule.empty_is_null)
        if not equal and kind in (ValueKind.TIMESTAMP, ValueKind.ANY, ValueKind.TEXT):
            equal = normalised = (self.same_stamp(p, s, expected, sv, earlier)
                                  or same_second(expected, sv) or same_scheme(expected, sv))
        if equal:
            self.normalised += int(normalised)
        else:
            detail = f"translated through the key map to {expected!r}" if expected != pv else ""
            self.add(Kind.ROW_CHANGED, p, pv, sv, detail, col)

    def same_stamp(self, p: NetChange, s: NetChange, pv: Any, sv: Any,
                   earlier: tuple[Moments, ...]) -> bool:
        """A "now" stamp of this write, or of one of the row's `earlier` writes, each read
        against the moments of the write that made it; in an update of a row whose
        earlier writes are not known, a stamp the shadow made at most this write's lag
        later (`stamped_later`)."""
        tolerance = self.rules.now_tolerance
        if any(same_moment(pv, sv, p_at, s_at, tolerance)
               for p_at, s_at in ((p.at, s.at), *earlier)):
            return True
        if earlier or p.op != "update" or p.at is None or s.at is None:
            return False
        # the row's earlier writes were never compared (made before the proxy started, or
        # their exchange gave up waiting): read the stamp as a reply's, up to this lag late
        return stamped_later(_text(pv), _text(sv), max(s.at - p.at, 0.0), tolerance)

    def add(self, kind: Kind, row: NetChange, primary: Any, shadow: Any, detail: str,
            column: str | None = None) -> None:
        path = f"{row.table}[{key_text(row.key)}]" + (f".{column}" if column else "")
        self.differences.append(Difference(kind, path, primary, shadow, detail))


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else value if isinstance(
        value, str) else ""


def _kind(info: TableInfo | None, column: str) -> ValueKind:
    return info.kind(column) if info is not None else ValueKind.ANY


def row_differ(primary_tables: Mapping[str, TableInfo], shadow_tables: Mapping[str, TableInfo],
               rules: RowRules, keymap: KeyMap, stamps: RowStamps | None = None) -> _Differ:
    """A differ whose `compare(table, primary, shadow)` adds the differences of one pair
    of rows to its `differences`: changes compared one by one (shadow.rows.match)."""
    return _Differ(primary_tables, shadow_tables, rules, keymap, stamps)


def pairing_content(primary_tables: Mapping[str, TableInfo],
                    shadow_tables: Mapping[str, TableInfo], rules: RowRules, keymap: KeyMap
                    ) -> Callable[[str, list[NetChange], list[NetChange], str | None], Content]:
    """`content(table, primary inserts, shadow inserts, surrogate key)`: what inserted rows
    are paired on, exactly as `diff_rows` pairs them (foreign keys through `keymap`)."""
    return _Differ(primary_tables, shadow_tables, rules, keymap).content


def diff_rows(primary: Sequence[RowChange], shadow: Sequence[RowChange], *,
              primary_tables: Mapping[str, TableInfo], shadow_tables: Mapping[str, TableInfo],
              rules: RowRules, keymap: KeyMap, stamps: RowStamps | None = None,
              recent: tuple[RecentImages | None, RecentImages | None] = (None, None)) -> RowDiff:
    """Compare the rows each side changed for one exchange.

    `primary_tables` / `shadow_tables` come from each side's `introspect()`. New key
    pairs are learnt into `keymap` and also returned, for the state store; the moments
    of each compared write are remembered in `stamps` (shadow.rows.stamps) when given;
    `recent` holds the rows' recent images on the primary and the shadow, against which
    an update on one side only is read (`_Differ.as_before`). Differences come table by
    table in primary write order: missing, extra and key differences first, then the
    column differences of paired rows.
    """
    differ = _Differ(primary_tables, shadow_tables, rules, keymap, stamps, recent)
    p_tables = {fold(n): t for n, t in primary_tables.items()}
    s_tables = {fold(n): t for n, t in shadow_tables.items()}

    def kind_of(table: str, column: str) -> ValueKind:
        p, s = p_tables.get(fold(table)), s_tables.get(fold(table))
        return pair_kind(p.kind(column) if p else ValueKind.ANY,
                         s.kind(column) if s else ValueKind.ANY)

    p_nets = net_changes(primary, rules, kind_of)
    s_nets = net_changes(shadow, rules, kind_of)
    paired = []
    for table in parents_first([*dict.fromkeys([*p_nets, *s_nets])], p_tables):
        p_rows, s_rows = truncates(p_nets.get(table, []), s_nets.get(table, []))
        for p, s in differ.pair(table, p_rows, s_rows):
            paired.append((table, p, s))
    for table, p, s in paired:
        differ.compare(table, p, s)
    return RowDiff(tuple(differ.differences), differ.normalised, differ.new_pairs)
