"""The legacy build: the app as it runs today, on two SQLite files through `sqlite3`.

How it touches its files (a new connection per request, statements in a worker thread,
the badges in a second file) is in `shadow.demo.legacy_files`; `LegacyDatabase.opened`
counts the connections. This module holds its SQL: what such an app grows over the years
and what a hasty port breaks: ids from `cursor.lastrowid`, points kept with
`INSERT OR REPLACE`, SQLite's bare columns next to `MAX()` in the inbox,
`datetime('now', '-7 days')` in the statistics, a journal listing that relies on rowid
order, `LIKE` that ignores ASCII case, `HAVING` on an output alias, badges listed by a
second-resolution timestamp with ties broken by name, and naive datetimes. Booleans are
0/1 and timestamps `'YYYY-MM-DD HH:MM:SS'` text.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from .auth import SessionCodec
from .legacy_files import Connections, achievements_path, create
from .request_context import Database
from .routes import build_app
from .schema import ACHIEVEMENTS_SCHEMA, SQLITE_SCHEMA
from .store import (Record, Store, UsernameTaken, badges_for, check_changes, is_new,
                    like_pattern, next_points)

_USER = "SELECT id, username, is_admin, created_at FROM users"
_MOOD = "SELECT id, score, note, tags, sleep_hours, created_at FROM moods"
_ENTRY = "SELECT id, title, body, is_private, created_at, updated_at FROM journal_entries"
_MESSAGE = """SELECT m.id, s.username AS sender, r.username AS recipient, m.body,
    m.is_read, m.created_at FROM messages m
    JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.recipient_id"""
_REFLECTION = "SELECT id, entry_id, reply, confidence, created_at FROM reflections"


def _mood(row: sqlite3.Row) -> Record:
    record = dict(row)
    record["tags"] = orjson.loads(record["tags"])
    return record


class LegacyDatabase(Database):
    """The two SQLite files of the legacy build; every request gets its own store and
    with it its own connections. `opened` counts connections per file ("main",
    "achievements") since start."""

    def __init__(self, main: Path, achievements: Path) -> None:
        self.paths = {"main": main, "achievements": achievements}
        self.opened: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()

    @classmethod
    @asynccontextmanager
    async def open(cls, db_path: str | Path, badges_path: str | Path | None = None
                   ) -> AsyncIterator[LegacyDatabase]:
        """Create both files and their schemas if missing."""
        main = Path(db_path)
        badges = Path(badges_path) if badges_path else achievements_path(main)
        await asyncio.to_thread(create, main, SQLITE_SCHEMA)
        await asyncio.to_thread(create, badges, ACHIEVEMENTS_SCHEMA)
        yield cls(main, badges)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Store]:
        store = LegacyStore(self)
        try:
            yield store
        finally:
            await store.close()


class LegacyStore(Connections, Store):
    """The Store of one request, over its own connections (see `Connections`)."""

    def __init__(self, database: LegacyDatabase) -> None:
        super().__init__(database.paths, database.opened, database.closed)

    async def add_user(self, username: str, password_hash: str) -> Record:
        def insert(db: sqlite3.Connection) -> int:
            try:
                return db.execute("INSERT INTO users (username, password_hash) VALUES (?, ?)",
                                  (username, password_hash)).lastrowid
            except sqlite3.IntegrityError:
                raise UsernameTaken(username) from None
        return await self.user(await self._write(insert))

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
        def insert(db: sqlite3.Connection) -> tuple[int, int, int]:
            mood_id = db.execute(
                "INSERT INTO moods (user_id, score, note, tags, sleep_hours) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, score, note, orjson.dumps(tags).decode(), sleep_hours)).lastrowid
            row = db.execute("SELECT points, streak_days, last_active FROM points "
                             "WHERE user_id = ?", (user_id,)).fetchone()
            current = None
            if row:
                last = row["last_active"]
                current = (row["points"], row["streak_days"],
                           date.fromisoformat(last) if last else None)
            total, streak = next_points(current, today)
            db.execute("INSERT OR REPLACE INTO points (user_id, points, streak_days, "
                       "last_active) VALUES (?, ?, ?, ?)",
                       (user_id, total, streak, today.isoformat()))
            return mood_id, total, streak

        mood_id, total, streak = await self._write(insert)
        await self._write(lambda db: db.executemany(
            "INSERT OR IGNORE INTO achievements (user_id, badge) VALUES (?, ?)",
            [(user_id, badge) for badge in badges_for(total, streak)]), "achievements")
        return {"id": mood_id, "points": total, "streak_days": streak}

    async def moods(self, user_id: int, limit: int) -> list[Record]:
        rows = await self._all(f"{_MOOD} WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                               user_id, limit)
        return [_mood(row) for row in rows]

    async def mood(self, user_id: int, mood_id: int) -> Record | None:
        row = await self._one(f"{_MOOD} WHERE id = ? AND user_id = ?", mood_id, user_id)
        return _mood(row) if row else None

    async def add_entry(self, user_id: int, title: str, body: str, private: bool) -> Record:
        entry_id = await self._write(lambda db: db.execute(
            "INSERT INTO journal_entries (user_id, title, body, is_private) "
            "VALUES (?, ?, ?, ?)", (user_id, title, body, int(private))).lastrowid)
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
        found = await self._write(lambda db: db.execute(
            f"UPDATE journal_entries SET {sets}, updated_at = datetime('now') "
            "WHERE id = ? AND user_id = ?", (*values, entry_id, user_id)).rowcount > 0)
        return await self.entry(user_id, entry_id) if found else None

    async def delete_entry(self, user_id: int, entry_id: int) -> bool:
        return await self._write(lambda db: db.execute(
            "DELETE FROM journal_entries WHERE id = ? AND user_id = ?",
            (entry_id, user_id)).rowcount > 0)

    async def send_message(self, sender_id: int, recipient_id: int, body: str) -> Record:
        message_id = await self._write(lambda db: db.execute(
            "INSERT INTO messages (sender_id, recipient_id, body) VALUES (?, ?, ?)",
            (sender_id, recipient_id, body)).lastrowid)
        return dict(await self._one(f"{_MESSAGE} WHERE m.id = ?", message_id))

    async def inbox(self, user_id: int) -> list[Record]:
        rows = await self._run(lambda db: db.execute(
            """SELECT CASE WHEN m.sender_id = :me THEN m.recipient_id ELSE m.sender_id END
                   AS partner_id, u.username AS partner, m.body AS last_message,
                   m.created_at AS last_message_at, MAX(m.id) AS last_id,
                   SUM(m.recipient_id = :me AND m.is_read = 0) AS unread, COUNT(*) AS total
               FROM messages m JOIN users u
                   ON u.id = CASE WHEN m.sender_id = :me THEN m.recipient_id ELSE m.sender_id END
               WHERE m.sender_id = :me OR m.recipient_id = :me
               GROUP BY partner_id ORDER BY last_id DESC""", {"me": user_id}).fetchall())
        keys = ("partner", "last_message", "last_message_at", "unread", "total")
        return [{key: row[key] for key in keys} for row in rows]

    async def conversation(self, user_id: int, partner_id: int, limit: int) -> list[Record]:
        rows = await self._all(
            f"""{_MESSAGE} WHERE (m.sender_id = ? AND m.recipient_id = ?)
                OR (m.sender_id = ? AND m.recipient_id = ?) ORDER BY m.id DESC LIMIT ?""",
            user_id, partner_id, partner_id, user_id, limit)
        return [dict(row) for row in rows]

    async def mark_read(self, user_id: int, partner_id: int) -> int:
        return await self._write(lambda db: db.execute(
            "UPDATE messages SET is_read = 1 "
            "WHERE recipient_id = ? AND sender_id = ? AND is_read = 0",
            (user_id, partner_id)).rowcount)

    async def points(self, user_id: int) -> Record:
        row = await self._one(
            "SELECT points, streak_days, last_active FROM points WHERE user_id = ?", user_id)
        return dict(row) if row else {"points": 0, "streak_days": 0, "last_active": None}

    async def audit(self, user_id: int | None, action: str, route: str, status: int) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO audit_log (user_id, action, route, status) VALUES (?, ?, ?, ?)",
            (user_id, action, route, status)))

    async def audit_summary(self, min_count: int) -> list[Record]:
        rows = await self._all(
            "SELECT action, COUNT(*) AS count FROM audit_log WHERE status < 400 "
            "GROUP BY action HAVING count >= ? ORDER BY action", min_count)
        return [dict(row) for row in rows]

    async def achievements(self, user_id: int, now: datetime) -> list[Record]:
        rows = await self._all(
            "SELECT badge, earned_at FROM achievements WHERE user_id = ? "
            "ORDER BY earned_at DESC, badge", user_id, file="achievements")
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        return [{**dict(row), "new": is_new(datetime.fromisoformat(row["earned_at"]),
                                            naive_now)} for row in rows]

    async def add_reflection(self, user_id: int, entry_id: int, reply: str,
                             confidence: float) -> Record:
        reflection_id = await self._write(lambda db: db.execute(
            "INSERT INTO reflections (user_id, entry_id, reply, confidence) "
            "VALUES (?, ?, ?, ?)", (user_id, entry_id, reply, confidence)).lastrowid)
        return dict(await self._one(f"{_REFLECTION} WHERE id = ?", reflection_id))

    async def reflections(self, user_id: int, limit: int) -> list[Record]:
        rows = await self._all(f"{_REFLECTION} WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                               user_id, limit)
        return [dict(row) for row in rows]

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


def make_legacy_app(db_path: str | Path, *, sessions: SessionCodec | None = None,
                    coach_url: str | None = None) -> web.Application:
    """The legacy build as an aiohttp app on the SQLite file `db_path` and its
    achievements file (both created if missing, schema included). `sessions` defaults to
    the demo secret and real time; `coach_url` is the AI coach the slow route waits on."""
    return build_app(backend="legacy", open_database=lambda: LegacyDatabase.open(db_path),
                     sessions=sessions or SessionCodec(), coach_url=coach_url)
