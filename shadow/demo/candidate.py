"""The candidate build: the same app on PostgreSQL through asyncpg.

With no bugs switched on it is the careful migration and answers exactly like the
legacy build: ids from RETURNING, an ON CONFLICT upsert, a strict inbox query, interval
arithmetic, ORDER BY on every listing, ILIKE, booleans rendered 0/1, timestamps rendered
`'YYYY-MM-DD HH:MM:SS'` in UTC, averages as floats, a username checked before the INSERT
so a duplicate burns no id, every transaction committed, badges ordered by the second
they were earned, numerics and datetimes converted. The legacy build's achievements file
is a table of the one database here. Each name in `bugs` (see `shadow.demo.bugs`) puts
back one hasty-port mistake instead.

Its pool, the schema it creates only when missing (so in production it runs as a role
with DML rights only) and its starting data are in `shadow.demo.candidate_database`.

One difference remains by design: ILIKE folds the case of every letter, SQLite's LIKE
only that of ASCII letters, so a search for a non-ASCII letter in another case finds
more here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from .auth import SessionCodec
from .bugs import parse_bugs
from .candidate_database import open_pool
from .request_context import AUDITED_READS, Database
from .routes import build_app
from .store import (Record, Store, UsernameTaken, badges_for, check_changes, is_new,
                    like_pattern, next_points)

_USER = "SELECT id, username, is_admin, created_at FROM users"
_MOOD = "SELECT id, score, note, tags, sleep_hours, created_at FROM moods"
_ENTRY = "SELECT id, title, body, is_private, created_at, updated_at FROM journal_entries"
_MESSAGE = """SELECT m.id, s.username AS sender, r.username AS recipient, m.body,
    m.is_read, m.created_at FROM messages m
    JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.recipient_id"""
_REFLECTION = "SELECT id, entry_id, reply, confidence, created_at FROM reflections"
_PARTNER = "CASE WHEN m.sender_id = $1 THEN m.recipient_id ELSE m.sender_id END"


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class CandidateDatabase(Database):
    """One asyncpg pool for the app's lifetime; every request shares it."""

    def __init__(self, store: CandidateStore) -> None:
        self._store = store

    @classmethod
    @asynccontextmanager
    async def open(cls, dsn: str, bugs: frozenset[str]) -> AsyncIterator[CandidateDatabase]:
        """Connect a pool to `dsn` (see `open_pool`); closed on exit."""
        async with open_pool(dsn) as pool:
            yield cls(CandidateStore(pool, bugs))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Store]:
        yield self._store


class CandidateStore(Store):
    """The Store over an asyncpg pool, with the given bugs switched on."""

    def __init__(self, pool: asyncpg.Pool, bugs: frozenset[str]) -> None:
        self._pool = pool
        self._bugs = bugs

    def _render(self, row: asyncpg.Record | dict[str, Any], *,
                decimals: bool | None = None) -> Record:
        """A row in the legacy rendering, the bugs aside; `decimals` says whether
        Decimals become floats (default: unless `avg_decimal` is on)."""
        if decimals is None:
            decimals = "avg_decimal" not in self._bugs
        out: Record = {}
        for key, value in dict(row).items():
            if isinstance(value, bool) and "bool_render" not in self._bugs:
                value = int(value)
            elif isinstance(value, datetime):
                if "timestamp_render" not in self._bugs:
                    value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            elif isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, Decimal) and decimals:
                value = float(value)
            out[key] = value
        return out

    async def _one(self, sql: str, *args: Any) -> Record | None:
        row = await self._pool.fetchrow(sql, *args)
        return self._render(row) if row is not None else None

    async def _all(self, sql: str, *args: Any) -> list[Record]:
        return [self._render(row) for row in await self._pool.fetch(sql, *args)]

    async def add_user(self, username: str, password_hash: str) -> Record:
        async with self._pool.acquire() as conn, conn.transaction():
            if "burnt_sequence" not in self._bugs:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", username)
                if await conn.fetchval("SELECT 1 FROM users WHERE username = $1", username):
                    raise UsernameTaken(username)
            try:
                row = await conn.fetchrow(
                    "INSERT INTO users (username, password_hash) VALUES ($1, $2) "
                    "RETURNING id, username, is_admin, created_at", username, password_hash)
            except asyncpg.UniqueViolationError:
                raise UsernameTaken(username) from None
        return self._render(row)

    async def user(self, user_id: int) -> Record | None:
        return await self._one(f"{_USER} WHERE id = $1", user_id)

    async def credentials(self, username: str) -> tuple[Record, str] | None:
        record = await self._one(
            "SELECT id, username, is_admin, created_at, password_hash FROM users "
            "WHERE username = $1", username)
        if record is None:
            return None
        return record, record.pop("password_hash")

    async def user_id(self, username: str) -> int | None:
        return await self._pool.fetchval("SELECT id FROM users WHERE username = $1", username)

    async def add_mood(self, user_id: int, score: int, note: str | None, tags: list[str],
                       sleep_hours: float | None, today: date) -> Record:
        if "empty_null" in self._bugs and note == "":
            note = None
        insert = ("INSERT INTO moods (user_id, score, note, tags, sleep_hours) "
                  "VALUES ($1, $2, $3, $4, $5)")
        args = (user_id, score, note, tags, sleep_hours)
        async with self._pool.acquire() as conn, conn.transaction():
            if "lastrowid" in self._bugs:
                mood_id = int((await conn.execute(insert, *args)).split()[1])
            else:
                mood_id = await conn.fetchval(f"{insert} RETURNING id", *args)
            row = await conn.fetchrow(
                "SELECT points, streak_days, last_active FROM points "
                "WHERE user_id = $1 FOR UPDATE", user_id)
            total, streak = next_points(tuple(row) if row else None, today)
            upsert = ("INSERT INTO points (user_id, points, streak_days, last_active) "
                      "VALUES ($1, $2, $3, $4)")
            if "insert_or_replace" not in self._bugs:
                upsert += (" ON CONFLICT (user_id) DO UPDATE SET points = EXCLUDED.points, "
                           "streak_days = EXCLUDED.streak_days, "
                           "last_active = EXCLUDED.last_active, updated_at = now()")
            await conn.execute(upsert, user_id, total, streak, today)
            await conn.executemany(
                "INSERT INTO achievements (user_id, badge) VALUES ($1, $2) "
                "ON CONFLICT (user_id, badge) DO NOTHING",
                [(user_id, badge) for badge in badges_for(total, streak)])
        return {"id": mood_id, "points": total, "streak_days": streak}

    async def moods(self, user_id: int, limit: int) -> list[Record]:
        return await self._all(f"{_MOOD} WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                               user_id, limit)

    async def mood(self, user_id: int, mood_id: int) -> Record | None:
        return await self._one(f"{_MOOD} WHERE id = $1 AND user_id = $2", mood_id, user_id)

    async def add_entry(self, user_id: int, title: str, body: str, private: bool) -> Record:
        insert = ("INSERT INTO journal_entries (user_id, title, body, is_private) "
                  "VALUES ($1, $2, $3, $4) RETURNING id")
        async with self._pool.acquire() as conn:
            if "lost_commit" in self._bugs:
                await conn.execute("BEGIN")
                entry_id = await conn.fetchval(insert, user_id, title, body, private)
                row = await conn.fetchrow(f"{_ENTRY} WHERE id = $1", entry_id)
                return self._render(row)
            async with conn.transaction():
                entry_id = await conn.fetchval(insert, user_id, title, body, private)
                row = await conn.fetchrow(f"{_ENTRY} WHERE id = $1", entry_id)
        return self._render(row)

    async def entries(self, user_id: int, search: str | None, limit: int) -> list[Record]:
        order = "" if "order_by" in self._bugs else " ORDER BY id"
        if search is None:
            return await self._all(f"{_ENTRY} WHERE user_id = $1{order} LIMIT $2",
                                   user_id, limit)
        like = "LIKE" if "like_case" in self._bugs else "ILIKE"
        return await self._all(
            f"{_ENTRY} WHERE user_id = $1 AND (title {like} $2 ESCAPE '\\' "
            f"OR body {like} $2 ESCAPE '\\'){order} LIMIT $3",
            user_id, like_pattern(search), limit)

    async def entry(self, user_id: int, entry_id: int) -> Record | None:
        return await self._one(f"{_ENTRY} WHERE id = $1 AND user_id = $2", entry_id, user_id)

    async def update_entry(self, user_id: int, entry_id: int,
                           changes: dict[str, Any]) -> Record | None:
        check_changes(changes)
        sets = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, start=3))
        status = await self._pool.execute(
            f"UPDATE journal_entries SET {sets}, updated_at = now() "
            "WHERE id = $1 AND user_id = $2", entry_id, user_id, *changes.values())
        return await self.entry(user_id, entry_id) if _affected(status) else None

    async def delete_entry(self, user_id: int, entry_id: int) -> bool:
        status = await self._pool.execute(
            "DELETE FROM journal_entries WHERE id = $1 AND user_id = $2", entry_id, user_id)
        return _affected(status) > 0

    async def send_message(self, sender_id: int, recipient_id: int, body: str) -> Record:
        message_id = await self._pool.fetchval(
            "INSERT INTO messages (sender_id, recipient_id, body) VALUES ($1, $2, $3) "
            "RETURNING id", sender_id, recipient_id, body)
        return await self._one(f"{_MESSAGE} WHERE m.id = $1", message_id)

    async def inbox(self, user_id: int) -> list[Record]:
        if "group_by" in self._bugs:
            sql = f"""SELECT {_PARTNER} AS partner_id, u.username AS partner,
                    m.body AS last_message, m.created_at AS last_message_at,
                    MAX(m.id) AS last_id, COUNT(*) AS total,
                    SUM(CASE WHEN m.recipient_id = $1 AND NOT m.is_read THEN 1 ELSE 0 END)
                        AS unread
                FROM messages m JOIN users u ON u.id = {_PARTNER}
                WHERE m.sender_id = $1 OR m.recipient_id = $1
                GROUP BY partner_id ORDER BY last_id DESC"""
        else:
            sql = f"""WITH threads AS (
                    SELECT {_PARTNER} AS partner_id, MAX(m.id) AS last_id,
                        COUNT(*) FILTER (WHERE m.recipient_id = $1 AND NOT m.is_read)
                            AS unread,
                        COUNT(*) AS total
                    FROM messages m WHERE m.sender_id = $1 OR m.recipient_id = $1
                    GROUP BY 1)
                SELECT u.username AS partner, m.body AS last_message,
                    m.created_at AS last_message_at, t.unread, t.total, t.last_id
                FROM threads t JOIN messages m ON m.id = t.last_id
                JOIN users u ON u.id = t.partner_id ORDER BY t.last_id DESC"""
        keys = ("partner", "last_message", "last_message_at", "unread", "total")
        return [{key: row[key] for key in keys} for row in await self._all(sql, user_id)]

    async def conversation(self, user_id: int, partner_id: int, limit: int) -> list[Record]:
        return await self._all(
            f"""{_MESSAGE} WHERE (m.sender_id = $1 AND m.recipient_id = $2)
                OR (m.sender_id = $2 AND m.recipient_id = $1) ORDER BY m.id DESC LIMIT $3""",
            user_id, partner_id, limit)

    async def mark_read(self, user_id: int, partner_id: int) -> int:
        return _affected(await self._pool.execute(
            "UPDATE messages SET is_read = true "
            "WHERE recipient_id = $1 AND sender_id = $2 AND NOT is_read", user_id, partner_id))

    async def points(self, user_id: int) -> Record:
        record = await self._one(
            "SELECT points, streak_days, last_active FROM points WHERE user_id = $1", user_id)
        return record or {"points": 0, "streak_days": 0, "last_active": None}

    async def audit(self, user_id: int | None, action: str, route: str, status: int) -> None:
        await self._pool.execute(
            "INSERT INTO audit_log (user_id, action, route, status) VALUES ($1, $2, $3, $4)",
            user_id, action, route, status)

    async def audit_summary(self, min_count: int) -> list[Record]:
        having = "count" if "having_alias" in self._bugs else "count(*)"
        return await self._all(
            "SELECT action, count(*) AS count FROM audit_log WHERE status < 400 "
            f"GROUP BY action HAVING {having} >= $1 ORDER BY action", min_count)

    async def achievements(self, user_id: int, now: datetime) -> list[Record]:
        order = ("earned_at DESC" if "order_tie" in self._bugs
                 else "date_trunc('second', earned_at) DESC, badge")
        rows = await self._pool.fetch(
            f"SELECT badge, earned_at FROM achievements WHERE user_id = $1 ORDER BY {order}",
            user_id)
        if "naive_aware" in self._bugs:
            now = now.replace(tzinfo=None)
        return [{**self._render(row), "new": is_new(row["earned_at"], now)} for row in rows]

    async def add_reflection(self, user_id: int, entry_id: int, reply: str,
                             confidence: float) -> Record:
        row = await self._pool.fetchrow(
            "INSERT INTO reflections (user_id, entry_id, reply, confidence) "
            "VALUES ($1, $2, $3, $4) RETURNING id, entry_id, reply, confidence, created_at",
            user_id, entry_id, reply, Decimal(repr(confidence)))
        return self._render(row, decimals="numeric_string" not in self._bugs)

    async def reflections(self, user_id: int, limit: int) -> list[Record]:
        rows = await self._pool.fetch(
            f"{_REFLECTION} WHERE user_id = $1 ORDER BY id DESC LIMIT $2", user_id, limit)
        return [self._render(row, decimals="numeric_string" not in self._bugs)
                for row in rows]

    async def stats(self) -> Record:
        totals = await self._one(
            """SELECT (SELECT count(*) FROM users) AS users,
                      (SELECT count(*) FROM moods) AS moods,
                      (SELECT count(*) FROM journal_entries) AS journal_entries,
                      (SELECT count(*) FROM messages) AS messages,
                      (SELECT round(avg(score), 2) FROM moods) AS average_mood""")
        since = ("datetime('now', '-7 days')" if "date_arith" in self._bugs
                 else "now() - interval '7 days'")
        days = await self._all(
            f"""SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                       count(*) AS moods, round(avg(score), 2) AS average
                FROM moods WHERE created_at >= {since} GROUP BY 1 ORDER BY 1""")
        return {**(totals or {}), "last_7_days": days}


def make_candidate_app(dsn: str, bugs: str | Iterable[str] | None = None, *,
                       sessions: SessionCodec | None = None,
                       coach_url: str | None = None) -> web.Application:
    """The candidate build as an aiohttp app on the PostgreSQL database `dsn` (schema
    created if missing), with `bugs` switched on: "all", "none", "a,b" or names, and
    the AI coach at `coach_url`. Raises `shadow.demo.bugs.UnknownBug` for a name that
    is not a bug."""
    names = parse_bugs(bugs)
    audited = dict(AUDITED_READS)
    if "audit_on_get" in names:
        audited["GET /api/me"] = "view_profile"
    return build_app(backend="candidate",
                     open_database=lambda: CandidateDatabase.open(dsn, names),
                     sessions=sessions or SessionCodec(), coach_url=coach_url,
                     audited=audited)
