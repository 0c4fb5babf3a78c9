"""Change capture on a SQLite database file (stdlib sqlite3, one worker thread).

Each captured table gets three AFTER triggers that log one short row per changed row
(see `sqlite_schema` for why they are so small); `drain()` reads and empties the log and
reads the current image of every logged row in the same transaction (see `sqlite_log`
for what that means for a row changed twice before a drain). Values come back as SQLite
holds them: integers, exact REALs, text, BLOBs as bytes. Update and delete changes carry
no `before` image.

The application's migrations work as without capture: the triggers name only key
columns. The running capture follows them: every drain first reads
`PRAGMA schema_version` (one integer from the header page); when it moved, the
catalogue is read again, tables created or renamed since get their triggers, and the
change is counted in `schema_changes` and logged.

Each operation (a drain, an install, a status) runs whole in the capture's one worker
thread: one hop from the event loop, however many statements it takes; the drain runs
on a write's path, so that matters. The connection is in autocommit mode, so each read
starts a fresh transaction and sees everything committed, in WAL mode or not, and never
holds a read snapshot that would keep the WAL from being checkpointed. `drain()` takes
the write lock first (`BEGIN IMMEDIATE`), so it cannot fail on a stale snapshot and the
images it reads are those of the rows as the log left them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from shadow.compare.bridge import kind_of_sqlite
from shadow.rows import sqlite_schema as schema
from shadow.rows.capture import Capture, CaptureError, CaptureStatus
from shadow.rows.model import RowRules, TableInfo
from shadow.rows.sqlite_log import LogRow, build_changes
from shadow.rows.sqlite_marker import Marker
from shadow.rows.sqlite_thread import OneThread, mapped
from shadow.verdict import RowChange

log = logging.getLogger("shadow.rows")


class SqliteCapture(OneThread, Capture):
    """Change capture on the SQLite file at `path` through one connection. `cap` bounds
    the change log while nobody drains it (see `sqlite_schema`)."""

    def __init__(self, path: str | Path, *, rules: RowRules | None = None,
                 busy_timeout: float = 5.0, cap: int = schema.DEFAULT_CAP) -> None:
        super().__init__(rules=rules)
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.cap = cap
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._layouts: dict[str, schema.Layout] = {}
        #: Every table seen since open, dropped ones included: a change logged before
        #: a DROP TABLE still names its table and key.
        self._seen: dict[str, tuple[TableInfo, schema.Layout]] = {}
        self._codes: dict[int, str] = {}
        self._version: int | None = None
        #: Schema changes the running capture noticed, and changes lost to the cap or to
        #: a dropped table, since open.
        self.schema_changes = 0
        self.lost = 0
        #: What install chose and what it costs (the CLI prints it).
        self.reason = ""
        #: The last schema change followed: when, tables added, dropped, altered and
        #: recaptured (None until one is seen).
        self.last_schema_change: dict[str, Any] | None = None

    async def open(self) -> None:
        """Connect to the existing file; raises CaptureError if it is missing (a typo in a
        path must not silently create an empty database) or cannot be opened."""
        if self._db is not None:
            return
        path = Path(self.path)
        if not path.is_file():
            raise CaptureError(f"sqlite open: no database file at {self.path}")
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-sqlite")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                 isolation_level=None, check_same_thread=False)
            try:
                db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            except BaseException:
                db.close()
                raise
            return db

        try:
            with mapped("open"):
                self._db = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        self._thread = thread

    async def close(self) -> None:
        db, thread, self._db, self._thread = self._db, self._thread, None, None
        if db is not None and thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, db.close)
            thread.shutdown(wait=False)

    async def introspect(self) -> dict[str, TableInfo]:
        return await self._run("introspect", self._introspect)

    def _introspect(self) -> dict[str, TableInfo]:
        tables, self._layouts = schema.read_tables(self._rows, kind_of_sqlite)
        self._seen.update({n: (tables[n], layout) for n, layout in self._layouts.items()})
        self._refresh_codes()
        return self._catalogue(tables)

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        wanted = None if tables is None else list(tables)

        def install() -> None:
            infos = self._introspect()
            selected = self._selected(infos, wanted)
            with self._transaction():
                columns = tuple(row[0] for row in self._rows(schema.LOG_COLUMNS))
                if columns != schema.LAYOUT:
                    self._exec(schema.DROP_LOG)
                    self._exec(schema.CREATE_LOG)
                codes = self._table_codes()
                for found in schema.read_triggers(self._rows):
                    self._exec(f"DROP TRIGGER {schema.quote_ident(found.name)}")
                self._exec(schema.cap_sql(self.cap))
                captured = [n for n in selected if infos[n].verifiable]
                self._capture(captured, codes)
            Marker(self.path).remove()  # what an earlier install by the log left
            self.reason = (
                f"triggers (rows.sqlite_capture): every new connection of the app parses "
                f"their {3 * len(captured)} objects; for an app that opens a connection per "
                "request, \"wal\" reads the write-ahead log instead, at no cost to it")

        await self._run("install", install)
        return await self.status()

    async def uninstall(self) -> None:
        def uninstall() -> None:
            Marker(self.path).remove()
            with self._transaction():
                schema.drop_capture(self._rows)

        await self._run("uninstall", uninstall)

    async def status(self) -> CaptureStatus:
        return await self._run("status", self._status)

    def _status(self) -> CaptureStatus:
        infos = self._introspect()
        has_log = bool(self._rows(schema.HAS_LOG))
        pending = self._rows(schema.COUNT_LOG)[0][0] if has_log else None
        listed: dict[str, list[str]] = {"captured": [], "uncaptured": [], "stale": [],
                                        "excluded": []}
        for name, state in self._states(infos, schema.read_triggers(self._rows)).items():
            listed[state].append(name)
        return CaptureStatus(
            log_table=has_log,
            captured=tuple(listed["captured"]),
            uncaptured=tuple(listed["uncaptured"]),
            stale=tuple(listed["stale"]),
            unverifiable={n: i.reason for n, i in infos.items() if not i.verifiable},
            excluded=tuple(listed["excluded"]),
            pending=pending,
        )

    async def drain(self) -> list[RowChange]:
        """Read and delete every logged change, with the current image of each row, in
        write order. Follows schema changes first (see the module docstring)."""
        return await self._run("drain", self._drain)

    def _drain(self) -> list[RowChange]:
        with self._transaction():
            self._follow_schema()
            drained = self._rows(schema.DRAIN)
            if not drained:
                return []
            drained.sort(key=lambda row: row[0])
            if drained[0][0] > 1:
                self._lose(drained[0][0] - 1, "the change log reached its cap")
            if any(row[1] // 4 not in self._codes for row in drained):
                self._refresh_codes()
            rows = [LogRow.of(row, self._codes.get(row[1] // 4, "")) for row in drained]
            images = self._images(rows)
        seen = {name: pair[0] for name, pair in self._seen.items()}
        layouts = {name: pair[1] for name, pair in self._seen.items()}
        changes, lost = build_changes(rows, seen, layouts, images)
        if lost:
            self._lose(lost, "their table or row was gone by the drain")
        return changes

    def _lose(self, count: int, why: str) -> None:
        self.lost += count
        log.warning("changes lost", extra={"count": count, "why": why, "path": self.path})

    def _images(self, rows: list[LogRow]) -> dict[str, dict[Any, dict[str, Any]]]:
        """The current image of every row an insert or update names, by table and locator."""
        wanted: dict[str, set[Any]] = {}
        for row in rows:
            layout = self._layouts.get(row.table)
            if row.op != "delete" and layout is not None and row.table in self._tables:
                wanted.setdefault(row.table, set()).add(row.locator(layout))
        images: dict[str, dict[Any, dict[str, Any]]] = {}
        for table, locators in wanted.items():
            info, layout = self._tables[table], self._layouts[table]
            query = schema.select_rows(info, layout)
            names = info.column_names
            found = images[table] = {}
            if layout.rowid is not None:
                for row in self._rows(query, (json.dumps(sorted(locators)),)):
                    found[row[0]] = dict(zip(names, row[1:], strict=True))
                continue
            for key in locators:
                for row in self._rows(query, key):
                    found[key] = dict(zip(names, row, strict=True))
        return images

    def _follow_schema(self) -> None:
        """When the schema moved since the last look: read the catalogue again, give
        tables that lack them their triggers, count and log the change."""
        version = self._rows(schema.SCHEMA_VERSION)[0][0]
        if version == self._version:
            return
        first = self._version is None
        before = {n: i.signature() for n, i in self._tables.items()}
        infos = self._introspect()
        states = self._states(infos, schema.read_triggers(self._rows))
        todo = [n for n, s in states.items() if s in ("uncaptured", "stale")]
        if todo and self._rows(schema.HAS_LOG):
            self._capture(todo, self._table_codes())
            self._introspect()
        if not first or todo:
            now = {n: i.signature() for n, i in infos.items()}
            self.schema_changes += 0 if first else 1
            change = {
                "added": sorted(now.keys() - before.keys()),
                "dropped": sorted(before.keys() - now.keys()),
                "altered": sorted(n for n in now.keys() & before.keys() if now[n] != before[n]),
                "recaptured": todo}
            self.last_schema_change = {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **change}
            log.info("schema changed; capture follows it", extra={"path": self.path, **change})
        self._version = self._rows(schema.SCHEMA_VERSION)[0][0]

    def _capture(self, names: list[str], codes: dict[str, int]) -> None:
        """(Re)create the triggers of `names`, keeping each table's code (inside a
        transaction). A table renamed since keeps its code under its new trigger names."""
        present = schema.read_triggers(self._rows)
        floor = self._rows(schema.MAX_LOGGED_CODE)[0][0]
        next_code = max([floor, *codes.values()]) + 1
        for name in names:
            for found in present:
                if found.table == name:
                    self._exec(f"DROP TRIGGER {schema.quote_ident(found.name)}")
            code = codes.get(name)
            if code is None:
                code, next_code = next_code, next_code + 1
            for sql in schema.trigger_sql(self._tables[name], self._layouts[name], code).values():
                self._exec(sql)
            self._codes[code] = name

    def _table_codes(self) -> dict[str, int]:
        """The code of each table that carries capture triggers now."""
        return {t.table: t.code for t in schema.read_triggers(self._rows) if t.code is not None}

    def _refresh_codes(self) -> None:
        for found in schema.read_triggers(self._rows):
            if found.code is not None:
                self._codes[found.code] = found.table

    def _states(self, infos: dict[str, TableInfo],
                triggers: list[schema.Installed]) -> dict[str, str]:
        """captured / stale / uncaptured / excluded for every verifiable table."""
        by_table: dict[str, dict[str, schema.Installed]] = {}
        for found in triggers:
            if found.code is not None:
                by_table.setdefault(found.table, {})[found.name] = found
        states = {}
        for name, info in infos.items():
            if not info.verifiable:
                continue
            present = by_table.get(name, {})
            codes = {t.code for t in present.values()}
            if len(codes) == 1:
                wanted = schema.trigger_sql(info, self._layouts[name], codes.pop())
                current = {n: t.sql for n, t in present.items()} == wanted
                states[name] = "captured" if current else "stale"
            elif present:
                states[name] = "stale"
            else:
                states[name] = "uncaptured" if self.rules.covers(name) else "excluded"
        return states
