"""What both change-capture backends share: the interface, the status record, quoting.

A trigger capture adds one change-log table (`_shadow_changes`) and row triggers to a
database; every insert, update and delete on a captured table then writes, inside the
same transaction, one log row (what each backend logs, and when it reads row images, is
said in its module). `drain()` reads and deletes the log and returns it as RowChange
records, in write order. An update that changes a row's key comes out as a delete of the
old key and an insert of the new one, so that every RowChange names exactly one row.
A PostgreSQL capture can read its server's clock (`now()`), the clock `RowChange.at` is
measured on there; SQLite's `at` is the host's own clock, read by the app's process.

    Capture         the interface of SqliteCapture and PostgresCapture
    CaptureStatus   what `status()` found: captured, uncaptured, stale, unverifiable tables
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shadow.rows.model import RowRules, TableInfo
from shadow.verdict import RowChange

LOG_TABLE = "_shadow_changes"
PREFIX = "_shadow_"
#: A "truncate" change names a whole table (its key is empty): every row went, which
#: rows is not known.
OPS = frozenset({"insert", "update", "delete", "truncate"})

_BARE_INF = re.compile(r"(?<=[:,\[])(-?)Inf(?=[,\]}])")


def quote_ident(name: str) -> str:
    """`name` as a quoted SQL identifier (same rule in SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def load_json(text: str | None, **options: Any) -> Any:
    """Parse one JSON image from the log; None stays None. Accepts the bare `Inf`
    some SQLite versions write for an infinite REAL."""
    if text is None:
        return None
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError:
        return json.loads(_BARE_INF.sub(r"\1Infinity", text), **options)


@dataclass(frozen=True, slots=True)
class CaptureStatus:
    """What is installed in one database.

    `log_table`: the change source exists (the log table, or the replication slot).
    `captured`: tables whose changes are captured as they are now. `uncaptured`: tables
    that could be captured but have no trigger (created after install, or never
    selected). `stale`: tables whose triggers were made for another name, key or columns;
    reinstall to refresh them. `unverifiable`: tables that cannot be captured, with the
    reason. `excluded`: tables left out by the rules. `pending`: changes logged and not
    drained yet (None when unknown). `method`: "triggers" or "decoding"; `detail` says
    more about it (the slot and the WAL it keeps); `faults`: other problems found.
    """

    log_table: bool
    captured: tuple[str, ...] = ()
    uncaptured: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    unverifiable: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    excluded: tuple[str, ...] = ()
    pending: int | None = None
    method: str = "triggers"
    detail: str = ""
    faults: tuple[str, ...] = ()

    @property
    def installed(self) -> bool:
        """Whether any trace of the capture is present."""
        return self.log_table or bool(self.captured or self.stale)

    @property
    def healthy(self) -> bool:
        """Installed, and every capturable table is captured with current triggers."""
        return self.log_table and not self.uncaptured and not self.stale and not self.faults

    def problems(self) -> list[str]:
        """Human-readable reasons why the capture is not healthy (empty when it is)."""
        found = []
        if not self.log_table and (self.captured or self.stale):
            found.append(f"{LOG_TABLE} is missing but triggers remain: writes will fail")
        elif not self.log_table:
            found.append("not installed")
        found += list(self.faults)
        found += [f"{t}: table has no capture trigger" for t in self.uncaptured]
        found += [f"{t}: capture triggers out of date (table or key renamed, or columns "
                  "changed): reinstall, or let the running proxy recapture it" for t in self.stale]
        return found


class Capture(ABC):
    """Change capture on one database through one long-lived connection.

    Open with `open()` / `close()` or `async with`. Every method raises the database
    library's error mapped to `CaptureError` when the database refuses.
    """

    def __init__(self, *, rules: RowRules | None = None) -> None:
        self.rules = rules or RowRules()
        self._tables: dict[str, TableInfo] = {}

    @abstractmethod
    async def open(self) -> None:
        """Connect; raises CaptureError when the database cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; safe to call more than once."""

    async def __aenter__(self) -> Capture:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def introspect(self) -> dict[str, TableInfo]:
        """Every application table (all but the change log), by name."""

    @abstractmethod
    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        """Create the change log and triggers on exactly `tables` (default: every
        application table the rules cover). Unverifiable tables get no trigger.
        Raises CaptureError for a named table that does not exist."""

    @abstractmethod
    async def uninstall(self) -> None:
        """Remove every trigger, function and table the capture added."""

    @abstractmethod
    async def status(self) -> CaptureStatus:
        """What is installed, compared with the tables that exist now."""

    @abstractmethod
    async def drain(self) -> list[RowChange]:
        """Read and delete every logged change, in write order."""

    async def sequence_position(self, table: str, column: str) -> int | None:
        """The last value `table`'s integer key `column` has taken from its generator
        (a burnt one included, where the database burns them), or None when this capture
        cannot tell. Raises CaptureError when the database refuses."""
        return None

    @property
    def tables(self) -> dict[str, TableInfo]:
        """The catalogue as of the last `introspect()`: one dict for the life of the
        capture, brought up to date in place, so holders of it see schema changes."""
        return self._tables

    def _catalogue(self, tables: dict[str, TableInfo]) -> dict[str, TableInfo]:
        """Bring `tables` (the catalogue) up to date in place; returns it."""
        self._tables.clear()
        self._tables.update(tables)
        return self._tables

    def _selected(self, tables: dict[str, TableInfo], wanted: Iterable[str] | None) -> list[str]:
        """The tables `install(wanted)` captures; raises CaptureError for unknown names."""
        if wanted is None:
            return [name for name in tables if self.rules.covers(name)]
        names = list(dict.fromkeys(wanted))
        unknown = [name for name in names if name not in tables]
        if unknown:
            raise CaptureError(f"no such table: {', '.join(unknown)}")
        return names

    def _change(self, info: TableInfo | None, tbl: str, op: str, pk: list[Any],
                before: Any, after: Any, at: float | None = None) -> RowChange:
        """One log row as a RowChange; `info` (if known) lets backends fix values."""
        if op not in OPS:
            raise CaptureError(f"{LOG_TABLE}: unknown op {op!r} for {tbl}")
        return RowChange(
            table=tbl,
            key=tuple(pk),
            op=op,
            before=self._image(info, before),
            after=self._image(info, after),
            at=at,
        )

    def _image(self, info: TableInfo | None, image: Any) -> dict[str, Any] | None:
        """A decoded JSON image as a plain dict; backends override to convert values."""
        return image


class CaptureError(RuntimeError):
    """The database refused a capture operation (install, drain...)."""
