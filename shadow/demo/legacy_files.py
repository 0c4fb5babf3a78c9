"""The legacy build's SQLite files, and how it touches them: as the Flask app it stands for.

The app's data is in one file and the users' badges in a second one next to it
(`achievements_path`). Every request opens its own `sqlite3` connection to a file the
first time it needs that file, runs each statement in a worker thread, and closes its
connections when it ends (`Connections`, counted per file). `write_seed` puts the
starting data into both files.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .schema import ACHIEVEMENTS_SCHEMA, COLUMN_KINDS, SQLITE_SCHEMA, TABLES
from .seed import COLUMNS, SeedData

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]


def achievements_path(db_path: str | Path) -> Path:
    """Where the legacy build keeps its achievements database, next to the main file."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}-achievements{path.suffix or '.sqlite3'}")


def connect(path: str | Path) -> sqlite3.Connection:
    """A new connection, as the app opens one per request: rows by name, foreign keys on."""
    db = sqlite3.connect(path, timeout=10, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    return db


def create(path: Path, schema: str) -> None:
    """Create `schema` in the SQLite file at `path` (WAL mode), where missing."""
    db = connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(schema)
    finally:
        db.close()


class Connections:
    """The connections of one request, by file ("main", "achievements"): each opened on
    first use and counted in `opened`, all closed by `close` and counted in `closed`."""

    def __init__(self, paths: Mapping[str, Path], opened: Counter[str],
                 closed: Counter[str]) -> None:
        self._paths = paths
        self._opened = opened
        self._closed = closed
        self._connections: dict[str, sqlite3.Connection] = {}

    async def _run(self, work: Work[T], file: str = "main") -> T:
        db = self._connections.get(file)
        if db is None:
            db = await asyncio.to_thread(connect, self._paths[file])
            self._connections[file] = db
            self._opened[file] += 1
        return await asyncio.to_thread(work, db)

    async def close(self) -> None:
        """Close the connections this request opened."""
        for file, db in self._connections.items():
            await asyncio.to_thread(db.close)
            self._closed[file] += 1
        self._connections.clear()

    async def _write(self, work: Work[T], file: str = "main") -> T:
        def transaction(db: sqlite3.Connection) -> T:
            try:
                result = work(db)
            except BaseException:
                db.rollback()
                raise
            db.commit()
            return result
        return await self._run(transaction, file)

    async def _all(self, sql: str, *args: Any, file: str = "main") -> list[sqlite3.Row]:
        return await self._run(lambda db: db.execute(sql, args).fetchall(), file)

    async def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        rows = await self._all(sql, *args)
        return rows[0] if rows else None


def _sqlite_value(kind: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return int(value)
    if kind == "timestamp":
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return value.isoformat()
    if kind == "json":
        return orjson.dumps(value).decode()
    return value


def _write_seed(main: Path, badges: Path, data: SeedData) -> None:
    for path, schema, tables in ((main, SQLITE_SCHEMA, TABLES),
                                 (badges, ACHIEVEMENTS_SCHEMA, ("achievements",))):
        db = connect(path)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            for table in tables:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.executescript(schema)
            for table, rows in data.rows.items():
                if table not in tables or (table == "achievements") != (path == badges):
                    continue
                columns = COLUMNS[table]
                kinds = [COLUMN_KINDS[table].get(column) for column in columns]
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [tuple(_sqlite_value(k, v) for k, v in zip(kinds, row)) for row in rows])
            db.commit()
        finally:
            db.close()


async def write_seed(path: str | Path, data: SeedData) -> None:
    """Drop the demo tables of the SQLite file at `path` and of its achievements file
    (`achievements_path`), recreate them, insert `data`."""
    await asyncio.to_thread(_write_seed, Path(path), achievements_path(path), data)
