"""Change capture on a SQLite database file (the only module that uses aiosqlite).

Each captured table gets three AFTER triggers (`_shadow_i_<t>`, `_shadow_u_<t>`,
`_shadow_d_<t>`) that write `json_object(...)` images of the row into `_shadow_changes`.
SQLite cannot put a BLOB into JSON, so a BLOB value is written as `{"$blob": "<hex>"}`
(a JSON object, which no stored value can be) and read back as bytes. Tables wider
than the argument limit of `json_object` are imaged as a JSON array of objects.

The application writes through its own connection. Ours runs in autocommit mode, so each
read starts a fresh transaction and sees everything committed, in WAL mode or not, and
never holds a read snapshot that would keep the WAL from being checkpointed. `drain()`
takes the write lock first (`BEGIN IMMEDIATE`), so it cannot fail on a stale snapshot.
The journal mode of the database is the application's business and is left as it is.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite

from shadow.compare.bridge import kind_of_sqlite
from shadow.rows import sqlite_schema as schema
from shadow.rows.capture import LOG_TABLE, Capture, CaptureError, CaptureStatus, load_json
from shadow.rows.model import RowRules, TableInfo
from shadow.verdict import RowChange

BLOB_MARK = "$blob"


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """Translate sqlite3 errors into CaptureError (the one place this happens)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise CaptureError(f"sqlite {action}: {exc}") from exc


class SqliteCapture(Capture):
    """Change capture on the SQLite file at `path` through one connection."""

    def __init__(self, path: str | Path, *, rules: RowRules | None = None,
                 busy_timeout: float = 5.0) -> None:
        super().__init__(rules=rules)
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect to the existing file; raises CaptureError if it is missing (a typo in a
        path must not silently create an empty database) or cannot be opened."""
        if self._db is not None:
            return
        path = Path(self.path)
        if not path.is_file():
            raise CaptureError(f"sqlite open: no database file at {self.path}")
        with _mapped("open"):
            uri = f"{path.resolve().as_uri()}?mode=rw"
            db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
            try:
                await db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            except BaseException:
                await db.close()
                raise
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise CaptureError("sqlite capture is not open")
        return self._db

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def introspect(self) -> dict[str, TableInfo]:
        with _mapped("introspect"):
            tables = await schema.read_tables(self._rows, kind_of_sqlite)
        self._tables = tables
        return tables

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        infos = await self.introspect()
        selected = self._selected(infos, tables)
        async with self._lock, self._transaction("install"):
            await self.db.execute(schema.CREATE_LOG)
            if "at" not in {row[0] for row in await self._rows(schema.LOG_COLUMNS)}:
                await self.db.execute(schema.ADD_AT)
            for name in await self._trigger_names():
                await self.db.execute(f"DROP TRIGGER {schema.quote_ident(name)}")
            for name in selected:
                if infos[name].verifiable:
                    for sql in schema.trigger_sql(infos[name]).values():
                        await self.db.execute(sql)
        return await self.status()

    async def uninstall(self) -> None:
        async with self._lock, self._transaction("uninstall"):
            for name in await self._trigger_names():
                await self.db.execute(f"DROP TRIGGER {schema.quote_ident(name)}")
            await self.db.execute(f"DROP TABLE IF EXISTS {schema.quote_ident(LOG_TABLE)}")

    async def status(self) -> CaptureStatus:
        infos = await self.introspect()
        with _mapped("status"):
            triggers = {name: sql for name, sql in await self._rows(schema.OUR_TRIGGERS)}
            has_log = bool(await self._rows(schema.HAS_LOG))
            pending = (await self._rows(schema.COUNT_LOG))[0][0] if has_log else None
        captured, uncaptured, stale, excluded = [], [], [], []
        for name, info in infos.items():
            if not info.verifiable:
                continue
            wanted = schema.trigger_sql(info)
            present = {n: triggers.get(n) for n in wanted}
            if all(present[n] == sql for n, sql in wanted.items()):
                captured.append(name)
            elif any(sql is not None for sql in present.values()):
                stale.append(name)
            elif self.rules.covers(name):
                uncaptured.append(name)
            else:
                excluded.append(name)
        return CaptureStatus(
            log_table=has_log,
            captured=tuple(captured),
            uncaptured=tuple(uncaptured),
            stale=tuple(stale),
            unverifiable={n: i.reason for n, i in infos.items() if not i.verifiable},
            excluded=tuple(excluded),
            pending=pending,
        )

    async def drain(self) -> list[RowChange]:
        async with self._lock, self._transaction("drain"):
            rows = await self._rows(schema.DRAIN)
        rows.sort(key=lambda row: row[0])
        changes = []
        for _seq, tbl, op, pk, before, after, at in rows:
            info = self._tables.get(tbl)
            changes.append(self._change(info, tbl, op, load_json(pk),
                                        load_json(before), load_json(after), at))
        return changes

    def _image(self, info: TableInfo | None, image: Any) -> dict[str, Any] | None:
        """Merge a chunked image and turn `{"$blob": hex}` values back into bytes."""
        if image is None:
            return None
        if isinstance(image, list):
            merged: dict[str, Any] = {}
            for part in image:
                merged.update(part)
            image = merged
        return {
            col: bytes.fromhex(value[BLOB_MARK])
            if isinstance(value, dict) and BLOB_MARK in value else value
            for col, value in image.items()
        }

    async def _trigger_names(self) -> list[str]:
        return [name for name, _sql in await self._rows(schema.OUR_TRIGGERS)]

    def _transaction(self, action: str) -> _Transaction:
        return _Transaction(self.db, action)


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back when the body raises; sqlite3 errors
    come out as CaptureError."""

    def __init__(self, db: aiosqlite.Connection, action: str) -> None:
        self.db = db
        self.action = action

    async def __aenter__(self) -> None:
        with _mapped(self.action):
            await self.db.execute("BEGIN IMMEDIATE")

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None,
                        tb: object) -> None:
        if exc_type is None:
            try:
                await self.db.execute("COMMIT")
                return
            except sqlite3.Error as failed:
                exc = failed
        with suppress(sqlite3.Error):
            await self.db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise CaptureError(f"sqlite {self.action}: {exc}") from exc
