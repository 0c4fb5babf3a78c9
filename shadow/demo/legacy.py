"""The legacy build: the app as it runs today, on a SQLite file through aiosqlite.

Its SQL is what such an app grows over the years and what a hasty port breaks: ids from
`cursor.lastrowid`, points kept with `INSERT OR REPLACE`, SQLite's bare columns next to
`MAX()` in the inbox, `datetime('now', '-7 days')` in the statistics, a journal listing
that relies on rowid order, `LIKE` that ignores ASCII case. Booleans are 0/1 and
timestamps `'YYYY-MM-DD HH:MM:SS'` text, straight from the rows.

One connection serves the app; a lock keeps each request's statements and commit together.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
from aiohttp import web

from .auth import SessionCodec
from .routes import build_app
from .schema import COLUMN_KINDS, SQLITE_SCHEMA, TABLES
from .seed import COLUMNS, SeedData
from .store import (Record, Store, UsernameTaken, check_changes, like_pattern,
                    next_points)

_USER = "SELECT id, username, is_admin, created_at FROM users"
_MOOD = "SELECT id, score, note, tags, sleep_hours, created_at FROM moods"
_ENTRY = "SELECT id, title, body, is_private, created_at, updated_at FROM journal_entries"
_MESSAGE = """SELECT m.id, s.username AS sender, r.username AS recipient, m.body,
    m.is_read, m.created_at FROM messages m
    JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.recipient_id"""


def _mood(row: aiosqlite.Row) -> Record:
    record = dict(row)
    record["tags"] = orjson.loads(record["tags"])
    return record


async def _connect(path: str | Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path)
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA foreign_keys = ON")
    await db.executescript(SQLITE_SCHEMA)
    return db


class LegacyStore(Store):
    """The Store over one aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path) -> AsyncIterator[LegacyStore]:
        """Open (and create the schema of) the SQLite file; closed on exit."""
        db = await _connect(path)
        try:
            yield cls(db)
        finally:
            await db.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def _query(self, sql: str, params: tuple[Any, ...] | dict[str, Any]
                     ) -> list[aiosqlite.Row]:
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _all(self, sql: str, *args: Any) -> list[aiosqlite.Row]:
        return await self._query(sql, args)

    async def _one(self, sql: str, *args: Any) -> aiosqlite.Row | None:
        rows = await self._query(sql, args)
        return rows[0] if rows else None

    async def add_user(self, username: str, password_hash: str) -> Record:
        async with self._write() as db:
            try:
                cur = await db.execute(
                    "INSERT INTO users (username, password_hash) VALUES (?, ?)",
                    (username, password_hash))
            except sqlite3.IntegrityError:
                raise UsernameTaken(username) from None
            user_id = cur.lastrowid
        return await self.user(user_id)

    async def user(self, user_id: int) -> Record | None:
        row = await self._one(f"{_USER} WHERE id = ?", user_id)
        return dict(row) if row else None

    async def credentials(self, username: str) -> tuple[Record, str] | None:
        row = await self._one(
            "SELECT id, username, is_admin, created_at, password_hash FROM users "
            "WHERE username = ?", username)
        if row is None:
            return None
        record = dict(row)
        return record, record.pop("password_hash")

    async def user_id(self, username: str) -> int | None:
        row = await self._one("SELECT id FROM users WHERE username = ?", username)
        return row["id"] if row else None

    async def add_mood(self, user_id: int, score: int, note: str | None, tags: list[str],
                       sleep_hours: float | None, today: date) -> Record:
        async with self._write() as db:
            cur = await db.execute(
                "INSERT INTO moods (user_id, score, note, tags, sleep_hours) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, score, note, orjson.dumps(tags).decode(), sleep_hours))
            mood_id = cur.lastrowid
            rows = await db.execute_fetchall(
                "SELECT points, streak_days, last_active FROM points WHERE user_id = ?",
                (user_id,))
            current = None
            if rows:
                last = rows[0]["last_active"]
                current = (rows[0]["points"], rows[0]["streak_days"],
                           date.fromisoformat(last) if last else None)
            total, streak = next_points(current, today)
            await db.execute(
                "INSERT OR REPLACE INTO points (user_id, points, streak_days, last_active) "
                "VALUES (?, ?, ?, ?)", (user_id, total, streak, today.isoformat()))
        return {"id": mood_id, "points": total, "streak_days": streak}

    async def moods(self, user_id: int, limit: int) -> list[Record]:
        rows = await self._all(f"{_MOOD} WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                               user_id, limit)
        return [_mood(row) for row in rows]

    async def mood(self, user_id: int, mood_id: int) -> Record | None:
        row = await self._one(f"{_MOOD} WHERE id = ? AND user_id = ?", mood_id, user_id)
        return _mood(row) if row else None

    async def add_entry(self, user_id: int, title: str, body: str, private: bool) -> Record:
        async with self._write() as db:
            cur = await db.execute(
                "INSERT INTO journal_entries (user_id, title, body, is_private) "
                "VALUES (?, ?, ?, ?)", (user_id, title, body, int(private)))
            entry_id = cur.lastrowid
        return await self.entry(user_id, entry_id)

    async def entries(self, user_id: int, search: str | None, limit: int) -> list[Record]:
        if search is None:
            rows = await self._all(f"{_ENTRY} WHERE user_id = ? LIMIT ?", user_id, limit)
        else:
            pattern = like_pattern(search)
            rows = await self._all(
                f"{_ENTRY} WHERE user_id = ? AND (title LIKE ? ESCAPE '\\' "
                "OR body LIKE ? ESCAPE '\\') LIMIT ?", user_id, pattern, pattern, limit)
        return [dict(row) for row in rows]

    async def entry(self, user_id: int, entry_id: int) -> Record | None:
        row = await self._one(f"{_ENTRY} WHERE id = ? AND user_id = ?", entry_id, user_id)
        return dict(row) if row else None

    async def update_entry(self, user_id: int, entry_id: int,
                           changes: dict[str, Any]) -> Record | None:
        check_changes(changes)
        sets = ", ".join(f"{column} = ?" for column in changes)
        values = [int(value) if isinstance(value, bool) else value
                  for value in changes.values()]
        async with self._write() as db:
            cur = await db.execute(
                f"UPDATE journal_entries SET {sets}, updated_at = datetime('now') "
                "WHERE id = ? AND user_id = ?", (*values, entry_id, user_id))
            found = cur.rowcount > 0
        return await self.entry(user_id, entry_id) if found else None

    async def delete_entry(self, user_id: int, entry_id: int) -> bool:
        async with self._write() as db:
            cur = await db.execute(
                "DELETE FROM journal_entries WHERE id = ? AND user_id = ?", (entry_id, user_id))
            return cur.rowcount > 0

    async def send_message(self, sender_id: int, recipient_id: int, body: str) -> Record:
        async with self._write() as db:
            cur = await db.execute(
                "INSERT INTO messages (sender_id, recipient_id, body) VALUES (?, ?, ?)",
                (sender_id, recipient_id, body))
            message_id = cur.lastrowid
        return dict(await self._one(f"{_MESSAGE} WHERE m.id = ?", message_id))

    async def inbox(self, user_id: int) -> list[Record]:
        rows = await self._query(
            """SELECT CASE WHEN m.sender_id = :me THEN m.recipient_id ELSE m.sender_id END
                   AS partner_id, u.username AS partner, m.body AS last_message,
                   m.created_at AS last_message_at, MAX(m.id) AS last_id,
                   SUM(m.recipient_id = :me AND m.is_read = 0) AS unread, COUNT(*) AS total
               FROM messages m JOIN users u
                   ON u.id = CASE WHEN m.sender_id = :me THEN m.recipient_id ELSE m.sender_id END
               WHERE m.sender_id = :me OR m.recipient_id = :me
               GROUP BY partner_id ORDER BY last_id DESC""", {"me": user_id})
        keys = ("partner", "last_message", "last_message_at", "unread", "total")
        return [{key: row[key] for key in keys} for row in rows]

    async def conversation(self, user_id: int, partner_id: int, limit: int) -> list[Record]:
        rows = await self._all(
            f"""{_MESSAGE} WHERE (m.sender_id = ? AND m.recipient_id = ?)
                OR (m.sender_id = ? AND m.recipient_id = ?) ORDER BY m.id DESC LIMIT ?""",
            user_id, partner_id, partner_id, user_id, limit)
        return [dict(row) for row in rows]

    async def mark_read(self, user_id: int, partner_id: int) -> int:
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE messages SET is_read = 1 "
                "WHERE recipient_id = ? AND sender_id = ? AND is_read = 0",
                (user_id, partner_id))
            return cur.rowcount

    async def points(self, user_id: int) -> Record:
        row = await self._one(
            "SELECT points, streak_days, last_active FROM points WHERE user_id = ?", user_id)
        return dict(row) if row else {"points": 0, "streak_days": 0, "last_active": None}

    async def stats(self) -> Record:
        totals = await self._one(
            """SELECT (SELECT COUNT(*) FROM users) AS users,
                      (SELECT COUNT(*) FROM moods) AS moods,
                      (SELECT COUNT(*) FROM journal_entries) AS journal_entries,
                      (SELECT COUNT(*) FROM messages) AS messages,
                      (SELECT ROUND(AVG(score), 2) FROM moods) AS average_mood""")
        days = await self._all(
            """SELECT date(created_at) AS day, COUNT(*) AS moods,
                      ROUND(AVG(score), 2) AS average
               FROM moods WHERE created_at >= datetime('now', '-7 days')
               GROUP BY date(created_at) ORDER BY day""")
        return {**dict(totals), "last_7_days": [dict(row) for row in days]}


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


async def write_seed(path: str | Path, data: SeedData) -> None:
    """Drop the demo tables of the SQLite file at `path`, recreate them, insert `data`."""
    db = await _connect(path)
    try:
        for table in TABLES:
            await db.execute(f"DROP TABLE IF EXISTS {table}")
        await db.executescript(SQLITE_SCHEMA)
        for table, rows in data.rows.items():
            columns = COLUMNS[table]
            kinds = [COLUMN_KINDS[table].get(column) for column in columns]
            await db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                [tuple(_sqlite_value(k, value) for k, value in zip(kinds, row)) for row in rows])
        await db.commit()
    finally:
        await db.close()


def make_legacy_app(db_path: str | Path, *, sessions: SessionCodec | None = None
                    ) -> web.Application:
    """The legacy build as an aiohttp app on the SQLite file `db_path` (created if
    missing, schema included). `sessions` defaults to the demo secret and real time."""
    return build_app(backend="legacy", open_store=lambda: LegacyStore.open(db_path),
                     sessions=sessions or SessionCodec())

