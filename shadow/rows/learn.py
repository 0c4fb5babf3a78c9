"""Key pairs from inserts whose rows are not compared (pure: no I/O).

    learn_pairs(primary, shadow, ...) -> (pairs, primary rows used, shadow rows used)

A group of overlapping writes that grew past its bound gives up comparing its rows (see
`shadow.writes.groups`), but its inserts still say which shadow row is which primary
row, and without that pair every later request or reply naming the row would differ by
its id alone. This reads pairs from a pool of such inserts, which may still be waiting
for their twins on the other side: only rows whose content is equal on both sides and
held by no other row of the pool pair (`shadow.rows.pairing.pair_unique`), so a row whose
twin has not arrived yet, or whose content is not unique, stays in the pool. Foreign keys
are translated, and tables paired parents first, as in the row diff. Nothing here is a
difference: these rows are not verified, only their keys are learnt. A table's anchor
(`shadow.rows.sequences`) moves to the highest ids paired on each side, since pairs
learnt here come in no particular order and the next insert follows the latest ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shadow.rows.diff import pairing_content
from shadow.rows.keymap import Key, KeyMap, Pair, freeze
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.rows.netchange import net_changes, parents_first
from shadow.rows.pairing import pair_unique
from shadow.rows.sequences import as_anchor, surrogate_key
from shadow.verdict import RowChange

Slot = tuple[str, Key]
"""A row as (folded table, key)."""


def slot_of(change: RowChange) -> Slot:
    return fold(change.table), freeze(change.key)


def learn_pairs(primary: Sequence[RowChange], shadow: Sequence[RowChange], *,
                primary_tables: Mapping[str, TableInfo],
                shadow_tables: Mapping[str, TableInfo], rules: RowRules, keymap: KeyMap
                ) -> tuple[list[Pair], set[Slot], set[Slot]]:
    """The pairs learnt into `keymap` from `primary` and `shadow` inserts (other changes
    are left alone), and the rows of each side they used."""
    content_of = pairing_content(primary_tables, shadow_tables, rules, keymap)
    inserts = [[c for c in side if c.op == "insert"] for side in (primary, shadow)]
    p_nets, s_nets = (net_changes(side, rules) for side in inserts)
    p_infos = {fold(n): t for n, t in primary_tables.items()}
    learnt: list[Pair] = []
    used_p: set[Slot] = set()
    used_s: set[Slot] = set()
    for table in parents_first([t for t in p_nets if t in s_nets], p_infos):
        p_rows = [r for r in p_nets[table] if r.op == "insert"]
        s_rows = [r for r in s_nets[table] if r.op == "insert"]
        surrogate = surrogate_key(p_infos.get(table), [r.key for r in (*p_rows, *s_rows)])
        content = content_of(table, p_rows, s_rows, surrogate)
        before = as_anchor(keymap.anchor(table))
        pairs = pair_unique(p_rows, s_rows, content)
        for p, s in pairs:
            keymap.learn(table, p.key, s.key)
            learnt.append((p.table, p.key, s.key))
            used_p.add((table, p.key))
            used_s.add((table, s.key))
        if surrogate is not None and pairs:
            tops = [(p.key[0], s.key[0]) for p, s in pairs] + ([before] if before else [])
            keymap.set_anchor(table, (max(p for p, _ in tops),), (max(s for _, s in tops),))
    return learnt, used_p, used_s
