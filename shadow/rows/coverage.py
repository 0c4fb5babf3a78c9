"""One account of what row verification covers, for `rows install` and `rows status` alike.

Tables are matched across the two backends by folded name, whatever database of a
backend holds them (a renamed table goes by its legacy name on both sides). Each table the config asks
for (the rules cover it) is in exactly one group:

    both        captured on both sides: its rows are compared
    one_side    exists or is captured on one side only: its rows cannot be compared
    keyless     no primary key on a side: not compared on either side (SQLite could key
                it by rowid, PostgreSQL has nothing stable), so add a key or exclude it
    pending     present on both sides but not captured (yet) on one: install again
    excluded    left out by rows.include / rows.exclude (not a problem)

`covered` is true when every table the config asks for is in `both`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shadow.rows.capture import CaptureStatus
from shadow.rows.model import RowRules, TableInfo, fold

GROUPS = ("both", "one_side", "keyless", "pending", "excluded")


@dataclass(frozen=True, slots=True)
class Coverage:
    """Table names per group, and a note per table saying why it is where it is."""

    groups: Mapping[str, tuple[str, ...]]
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def covered(self) -> bool:
        return not any(self.groups[g] for g in ("one_side", "keyless", "pending"))

    def lines(self) -> list[str]:
        """The report, one line per group that has tables."""
        out = []
        titles = {"both": "compared (both sides)", "one_side": "one side only",
                  "keyless": "keyless, not compared", "pending": "not captured yet",
                  "excluded": "excluded by the rules"}
        for group in GROUPS:
            names = self.groups[group]
            if names:
                shown = ", ".join(f"{n} ({self.notes[n]})" if n in self.notes else n
                                  for n in names)
                out.append(f"  {titles[group]}: {shown}")
        missing = sum(len(self.groups[g]) for g in ("one_side", "keyless", "pending"))
        out.append("every table the config asks for is compared" if not missing
                   else f"{missing} table(s) the config asks for are not compared")
        return out


def coverage(statuses: Mapping[str, CaptureStatus],
             tables: Mapping[str, Mapping[str, TableInfo]], rules: RowRules,
             where: Mapping[str, Mapping[str, str]] | None = None) -> Coverage:
    """The coverage of two backends (`statuses` and `tables` keyed by backend name).
    `where` names, for a backend of several databases, the database of each table: a
    compared table's note then says which database holds it on that side."""
    where = where or {}
    backends = list(statuses)
    by_name: dict[str, dict[str, str]] = {}
    for backend in backends:
        for name in tables[backend]:
            by_name.setdefault(fold(name), {})[backend] = name
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    notes: dict[str, str] = {}
    for folded in sorted(by_name):
        names = by_name[folded]
        shown = next(iter(names.values()))
        if not rules.covers(shown):
            groups["excluded"].append(shown)
            continue
        if len(names) < len(backends):
            groups["one_side"].append(shown)
            notes[shown] = f"only in {', '.join(names)}"
            continue
        keyless = {b: tables[b][n].reason for b, n in names.items()
                   if not tables[b][n].verifiable or tables[b][n].key in (("rowid",), ("_rowid_",), ("oid",))}
        if keyless:
            groups["keyless"].append(shown)
            notes[shown] = "; ".join(f"{b}: {why or 'keyed by rowid'}" for b, why in keyless.items())
            continue
        captured = [b for b, n in names.items() if n in statuses[b].captured]
        if len(captured) == len(backends):
            groups["both"].append(shown)
            held = [f"{b}: {where[b][n]}" for b, n in names.items() if n in where.get(b, {})]
            if held:
                notes[shown] = ", ".join(held)
        else:
            groups["pending"].append(shown)
            notes[shown] = f"captured in {', '.join(captured) or 'neither'}"
    return Coverage({g: tuple(v) for g, v in groups.items()}, notes)
