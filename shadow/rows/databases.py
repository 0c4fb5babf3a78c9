"""One backend's several databases seen as one capture, tables under their compared names.

A build may keep its tables in more than one database (a main file and a `pet_game.db`
on the SQLite side, everything in one PostgreSQL database on the other). Rows are
matched across the two backends by table name whatever database holds them, so a
backend's capture is the union of one capture per database:

- its catalogue is every table of every database, each under its *compared name*: its
  own name, or, for a table the migration renamed (`rows.renamed`, legacy name =
  candidate name), the legacy name on both sides;
- `drain()` drains every database (concurrently) and merges the changes by time;
- `install()`, `uninstall()` and `status()` act on each database; the merged status
  names compared names and prefixes a database's own faults with its name, and
  `statuses` keeps the last status of each database for reports.

Two databases of one backend may not both hold a table the rules cover under one
compared name: which of them the other backend's table matches would be a guess
(`CaptureError` names both; rename one in `rows.renamed`, or exclude it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from shadow.rows.capture import Capture, CaptureError, CaptureStatus
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.verdict import RowChange

log = logging.getLogger("shadow.rows")


def compared_names(renamed: Mapping[str, str], backend: str) -> dict[str, str]:
    """Own table name -> compared name on `backend`, from `rows.renamed` (legacy name =
    candidate name): the candidate's renamed tables go by their legacy names."""
    return {} if backend == "legacy" else {cand: legacy for legacy, cand in renamed.items()}


def inner_rules(rules: RowRules, names: Mapping[str, str]) -> RowRules:
    """`rules` with table names translated from compared names to one database's own
    (`names`: own name -> compared name), for deciding what that database captures."""
    own = {fold(compared): fold(name) for name, compared in names.items()}
    return dataclasses.replace(
        rules,
        include=None if rules.include is None else frozenset(own.get(t, t) for t in rules.include),
        exclude=frozenset(own.get(t, t) for t in rules.exclude))


class DatabasesCapture(Capture):
    """The captures of one backend's databases (`parts`, by database name) as one.

    `names` maps a table's own name (folded) to its compared name, for every renamed
    table. Open, close and every operation act on each database."""

    def __init__(self, parts: Mapping[str, Capture], *, rules: RowRules | None = None,
                 names: Mapping[str, str] | None = None) -> None:
        super().__init__(rules=rules)
        if not parts:
            raise ValueError("a backend needs at least one database")
        self.parts = dict(parts)
        self.names = {fold(own): compared for own, compared in (names or {}).items()}
        self._own: dict[str, tuple[str, str]] = {}
        self._merged_from: dict[str, list[int]] = {}
        self.statuses: dict[str, CaptureStatus] = {}

    def compared_name(self, own: str) -> str:
        return self.names.get(fold(own), own)

    def where(self) -> dict[str, str]:
        """The database that holds each table, by compared name."""
        return {table: db for table, (db, _own) in self._own.items()}

    # --- lifetime ------------------------------------------------------------------

    async def open(self) -> None:
        opened: list[Capture] = []
        try:
            for part in self.parts.values():
                await part.open()
                opened.append(part)
        except BaseException:
            for part in opened:
                await part.close()
            raise

    async def close(self) -> None:
        for part in self.parts.values():
            await part.close()

    # --- what each part reports, under compared names ------------------------------------

    @property
    def method(self) -> str:
        """How this backend's changes are captured (one method per database kind)."""
        return ",".join(dict.fromkeys(_method(part) for part in self.parts.values()))

    @property
    def reason(self) -> str:
        return "; ".join(f"{db}: {part.reason}" for db, part in self.parts.items()
                         if getattr(part, "reason", ""))

    @property
    def schema_changes(self) -> int:
        return sum(getattr(part, "schema_changes", 0) for part in self.parts.values())

    @property
    def lost(self) -> int:
        return sum(getattr(part, "lost", 0) for part in self.parts.values())

    @property
    def last_schema_change(self) -> dict | None:
        """The latest schema change any database followed, naming its database."""
        seen = [{"database": db, **change} for db, part in self.parts.items()
                if (change := getattr(part, "last_schema_change", None))]
        return max(seen, key=lambda change: change["at"]) if seen else None

    @property
    def change_clock(self) -> Any:
        """How the changes' times map to the proxy's clock, when a database says."""
        return next((clock for part in self.parts.values()
                     if (clock := getattr(part, "change_clock", None)) is not None), None)

    @property
    def positions(self) -> Callable[[], dict[str, tuple[int, int]]] | None:
        """Where the logs of the databases that can say stand now, by log name (see
        `shadow.rows.sqlite_position`); None when no database can, so that no request
        reads positions for nothing."""
        readers = [reader for part in self.parts.values()
                   if (reader := getattr(part, "positions", None)) is not None]
        if not readers:
            return None
        if len(readers) == 1:
            return readers[0]

        def positions() -> dict[str, tuple[int, int]]:
            found: dict[str, tuple[int, int]] = {}
            for reader in readers:
                found.update(reader())
            return found

        return positions

    async def now(self) -> float | None:
        """The database server's clock (the first database that has one), else None."""
        for part in self.parts.values():
            clock = getattr(part, "now", None)
            if clock is not None:
                return await clock()
        return None

    def _merge(self, *, strict: bool = True) -> dict[str, TableInfo]:
        """The catalogue of every part under compared names (updated in place). When two
        databases hold one compared table the rules cover: raises CaptureError, or, when
        not `strict` (a running drain), logs it and keeps the first database's table."""
        merged: dict[str, TableInfo] = {}
        own: dict[str, tuple[str, str]] = {}
        clashes = []
        for db, part in self.parts.items():
            for name, info in part.tables.items():
                compared = self.compared_name(name)
                if compared in merged:
                    if self.rules.covers(compared):
                        clashes.append(f"{compared!r} is in database {own[compared][0]!r} and "
                                       f"in database {db!r}")
                    continue
                merged[compared] = self._renamed(info, compared)
                own[compared] = (db, name)
        if clashes:
            problem = ("tables are matched by name: " + "; ".join(clashes)
                       + " (rename one in rows.renamed, or exclude it)")
            if strict:
                raise CaptureError(problem)
            log.warning("table in two databases of one backend", extra={"problem": problem})
        self._own = own
        self._merged_from = {db: _identity(part.tables) for db, part in self.parts.items()}
        return self._catalogue(merged)

    def _renamed(self, info: TableInfo, compared: str) -> TableInfo:
        refs = {col: self.compared_name(parent) for col, parent in info.references.items()}
        if compared == info.name and refs == dict(info.references):
            return info
        return dataclasses.replace(info, name=compared, references=refs)

    # --- operations ---------------------------------------------------------------------

    async def introspect(self) -> dict[str, TableInfo]:
        for part in self.parts.values():
            await part.introspect()
        return self._merge()

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        if tables is None:
            for part in self.parts.values():
                await part.install()
        else:
            catalogue = await self.introspect()
            wanted = self._selected(catalogue, tables)
            for db, part in self.parts.items():
                await part.install([name for t in wanted
                                    for owner, name in [self._own[t]] if owner == db])
        return await self.status()

    async def uninstall(self) -> None:
        for part in self.parts.values():
            await part.uninstall()

    async def status(self) -> CaptureStatus:
        statuses = {db: await part.status() for db, part in self.parts.items()}
        self._merge()
        self.statuses = statuses
        return merge_statuses(statuses, self.compared_name)

    async def drain(self) -> list[RowChange]:
        """Every database's changes, merged by time (each database's own order kept);
        changes are named by compared table name."""
        parts = list(self.parts.values())
        drained = await asyncio.gather(*(part.drain() for part in parts))
        if any(_identity(part.tables) != self._merged_from.get(db)
               for db, part in self.parts.items()):
            self._merge(strict=False)
        streams = [[self._change_named(c) for c in changes] for changes in drained if changes]
        if len(streams) <= 1:
            return streams[0] if streams else []
        return list(heapq.merge(*streams, key=lambda c: c.at if c.at is not None else 0.0))

    async def sequence_position(self, table: str, column: str) -> int | None:
        """The position of compared table `table`'s key sequence, in its database."""
        held = self._own.get(table)
        if held is None:
            return None
        db, own = held
        return await self.parts[db].sequence_position(own, column)

    def _change_named(self, change: RowChange) -> RowChange:
        compared = self.compared_name(change.table)
        return change if compared == change.table else dataclasses.replace(change, table=compared)


def _identity(tables: Mapping[str, TableInfo]) -> list[int]:
    """What changes when a part's catalogue changes (its dict is updated in place)."""
    return [id(info) for info in tables.values()]


def _method(part: Capture) -> str:
    return getattr(part, "method", None) or "sqlite-triggers"


def merge_statuses(statuses: Mapping[str, CaptureStatus], compared=lambda name: name
                   ) -> CaptureStatus:
    """One status for the databases of one backend: tables under compared names, faults
    and details prefixed by their database's name when there are several."""
    several = len(statuses) > 1

    def names(field: str) -> tuple[str, ...]:
        return tuple(compared(t) for st in statuses.values() for t in getattr(st, field))

    def prefixed(db: str, text: str) -> str:
        return f"{db}: {text}" if several else text

    pending = [st.pending for st in statuses.values()]
    return CaptureStatus(
        log_table=all(st.log_table for st in statuses.values()),
        captured=names("captured"), uncaptured=names("uncaptured"), stale=names("stale"),
        unverifiable=MappingProxyType({compared(t): why for st in statuses.values()
                                       for t, why in st.unverifiable.items()}),
        excluded=names("excluded"),
        pending=None if None in pending else sum(p for p in pending if p is not None),
        method=",".join(dict.fromkeys(st.method for st in statuses.values())),
        detail="; ".join(prefixed(db, st.detail) for db, st in statuses.items() if st.detail),
        faults=tuple(prefixed(db, f) for db, st in statuses.items() for f in st.faults)
        + tuple(prefixed(db, "not installed") for db, st in statuses.items()
                if several and not st.log_table and any(s.log_table for s in statuses.values())),
    )
