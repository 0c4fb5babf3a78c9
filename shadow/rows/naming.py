"""Which table a column or a path segment names, read from names the way apps are written.

    table_named(name, tables)      `moods`, `mood_id`, `entry_id` -> the table, or None
    with_named_references(infos)   tables whose `*_id` columns name another table's key
                                   get that reference, as a declared foreign key would

Apps often leave foreign keys undeclared (`reflections.entry_id INTEGER NOT NULL`). When
overlapping writes take their ids in another order on each side, such a column holds the
primary's id on one side and the shadow's on the other, and only a reference says that
the two are the same row. A name gives it when it leads to exactly one table: the name
less `_id`, as it is or in a plural form (`mood` -> `moods`, `story` -> `stories`), else a
table ending in `_` and that form (`entry` -> `journal_entries`), else the one table
starting with it and `_` (`mood` -> `mood_logs`). Declared references are never replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from types import MappingProxyType

from shadow.rows.model import TableInfo, fold


def table_named(name: str, tables: Collection[str]) -> str | None:
    """The one table of `tables` (folded names) that `name` refers to, or None."""
    base = fold(name).removesuffix("_id").removesuffix("id").rstrip("_")
    if not base:
        return None
    forms = [base, base + "s", base + "es"] + ([base[:-1] + "ies"] if base[-1:] == "y" else [])
    found = next((form for form in forms if form in tables), None)
    if found is None:
        ends = sorted({t for t in tables for form in forms if t.endswith("_" + form)})
        starts = sorted(t for t in tables if t.startswith(base + "_"))
        found = ends[0] if len(ends) == 1 else starts[0] if len(starts) == 1 else None
    return found


def with_named_references(infos: Mapping[str, TableInfo]) -> dict[str, TableInfo]:
    """`infos` where each column named `<name>_id` that is not part of its table's key and
    has no declared reference refers to the table its name leads to, when that table is
    another one with a one-column key."""
    by_folded = {fold(name): info for name, info in infos.items()}
    out: dict[str, TableInfo] = {}
    for name, info in infos.items():
        declared = {fold(c) for c in info.references}
        keys = {fold(k) for k in info.key}
        refs = dict(info.references)
        for column in info.columns:
            folded = fold(column.name)
            if not folded.endswith("_id") or folded in declared or folded in keys:
                continue
            target = table_named(folded, by_folded)
            parent = by_folded.get(target) if target is not None else None
            if parent is not None and target != fold(name) and len(parent.key) == 1:
                refs[column.name] = parent.name
        out[name] = info if len(refs) == len(info.references) else dataclasses.replace(
            info, references=MappingProxyType(refs))
    return out
