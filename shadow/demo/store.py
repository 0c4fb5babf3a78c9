"""The data layer both builds implement, and the logic they share.

The handlers in `shadow.demo.routes` only talk to a `Store`. Each method returns plain
records (dicts) ready to serialise, in the legacy rendering: booleans 0/1, timestamps
`'YYYY-MM-DD HH:MM:SS'` (UTC), dates `'YYYY-MM-DD'`, averages as floats rounded to two
places. Record shapes:

    user      {"id", "username", "is_admin", "created_at"}
    mood      {"id", "score", "note", "tags", "sleep_hours", "created_at"}
    entry     {"id", "title", "body", "is_private", "created_at", "updated_at"}
    message   {"id", "sender", "recipient", "body", "is_read", "created_at"}
    thread    {"partner", "last_message", "last_message_at", "unread", "total"}
    points    {"points", "streak_days", "last_active"}
    badge     {"badge", "earned_at", "new"}          new: 1 within a day of earning it
    reflection {"id", "entry_id", "reply", "confidence", "created_at"}
    action    {"action", "count"}

Lists come in a fixed order: moods newest first, journal entries oldest first, messages
of a conversation newest first, inbox threads by latest message first, reflections
newest first, badges by the second they were earned, newest first, and badges earned in
the same second by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime, timedelta
from typing import Any

Record = dict[str, Any]

POINTS_PER_MOOD = 10
JOURNAL_COLUMNS = ("title", "body", "is_private")
"""The journal columns a client may change."""


BADGE_POINTS = ((10, "points_10"), (50, "points_50"), (100, "points_100"))
NEW_BADGE = timedelta(days=1)
"""A badge earned less than this long ago is marked new."""


def badges_for(points: int, streak: int) -> list[str]:
    """The badges a user holds after a mood brought them to `points` and `streak`, in
    the order they are awarded (those already held are skipped by the stores)."""
    badges = [name for need, name in BADGE_POINTS if points >= need] + ["first_mood"]
    return badges + (["streak_3"] if streak >= 3 else [])


def is_new(earned: datetime, now: datetime) -> int:
    """1 if a badge earned at `earned` is still new at `now` (both naive UTC, or both
    aware), else 0."""
    return int(now - earned < NEW_BADGE)


class UsernameTaken(Exception):
    """Registering a username that already exists."""


def next_points(current: tuple[int, int, date | None] | None, today: date) -> tuple[int, int]:
    """Points and streak after logging a mood `today`, given (points, streak, last day)."""
    if current is None:
        return POINTS_PER_MOOD, 1
    points, streak, last = current
    if last == today:
        return points + POINTS_PER_MOOD, max(streak, 1)
    if last == today - timedelta(days=1):
        return points + POINTS_PER_MOOD, streak + 1
    return points + POINTS_PER_MOOD, 1


def check_changes(changes: dict[str, Any]) -> None:
    """Raise ValueError unless every key of `changes` is in JOURNAL_COLUMNS (the keys
    become column names in SQL)."""
    unknown = set(changes) - set(JOURNAL_COLUMNS)
    if unknown or not changes:
        raise ValueError(f"not journal columns a client may change: {sorted(unknown)}")


def like_pattern(search: str) -> str:
    """A LIKE pattern matching `search` anywhere, its wildcards escaped with '\\'."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Store(ABC):
    """One build's database. Every method may raise only on a bug or a lost database."""

    @abstractmethod
    async def add_user(self, username: str, password_hash: str) -> Record:
        """Create a user and return its record; raises UsernameTaken."""

    @abstractmethod
    async def user(self, user_id: int) -> Record | None:
        """The user with this id."""

    @abstractmethod
    async def credentials(self, username: str) -> tuple[Record, str] | None:
        """The user with this name and its password hash."""

    @abstractmethod
    async def user_id(self, username: str) -> int | None:
        """The id of the user with this name."""

    @abstractmethod
    async def add_mood(self, user_id: int, score: int, note: str | None, tags: list[str],
                       sleep_hours: float | None, today: date) -> Record:
        """Store a mood and award its points in one transaction.

        Returns {"id", "points", "streak_days"}: the new mood id and the new totals.
        """

    @abstractmethod
    async def moods(self, user_id: int, limit: int) -> list[Record]:
        """The user's latest moods, newest first."""

    @abstractmethod
    async def mood(self, user_id: int, mood_id: int) -> Record | None:
        """One of the user's moods."""

    @abstractmethod
    async def add_entry(self, user_id: int, title: str, body: str, private: bool) -> Record:
        """Store a journal entry and return it."""

    @abstractmethod
    async def entries(self, user_id: int, search: str | None, limit: int) -> list[Record]:
        """The user's journal entries, oldest first; with `search`, those whose title or
        body contains it, ignoring ASCII case."""

    @abstractmethod
    async def entry(self, user_id: int, entry_id: int) -> Record | None:
        """One of the user's journal entries."""

    @abstractmethod
    async def update_entry(self, user_id: int, entry_id: int,
                           changes: dict[str, Any]) -> Record | None:
        """Apply `changes` (keys from JOURNAL_COLUMNS), stamp updated_at, return the entry."""

    @abstractmethod
    async def delete_entry(self, user_id: int, entry_id: int) -> bool:
        """Delete one of the user's entries; False if there was none."""

    @abstractmethod
    async def send_message(self, sender_id: int, recipient_id: int, body: str) -> Record:
        """Store an unread message and return it."""

    @abstractmethod
    async def inbox(self, user_id: int) -> list[Record]:
        """One thread record per conversation partner, latest conversation first."""

    @abstractmethod
    async def conversation(self, user_id: int, partner_id: int, limit: int) -> list[Record]:
        """The latest messages between the two users, newest first."""

    @abstractmethod
    async def mark_read(self, user_id: int, partner_id: int) -> int:
        """Mark the partner's messages to the user read; the number changed."""

    @abstractmethod
    async def points(self, user_id: int) -> Record:
        """The user's points record; zeros and a null day if none was ever awarded."""

    @abstractmethod
    async def audit(self, user_id: int | None, action: str, route: str, status: int) -> None:
        """Append one audit row, in its own transaction."""

    @abstractmethod
    async def audit_summary(self, min_count: int) -> list[Record]:
        """Action records of successful requests (status < 400) seen at least
        `min_count` times, by action name."""

    @abstractmethod
    async def achievements(self, user_id: int, now: datetime) -> list[Record]:
        """The user's badges (order: see the module docstring); `now` is aware UTC."""

    @abstractmethod
    async def add_reflection(self, user_id: int, entry_id: int, reply: str,
                             confidence: float) -> Record:
        """Store the coach's reflection on an entry and return it."""

    @abstractmethod
    async def reflections(self, user_id: int, limit: int) -> list[Record]:
        """The user's latest reflections, newest first."""

    @abstractmethod
    async def stats(self) -> Record:
        """{"users", "moods", "journal_entries", "messages", "average_mood",
        "last_7_days": [{"day", "moods", "average"}]}, days in ascending order."""
