"""The starting data of the demo, written the same way into both databases.

`seed()` does what a careful migration did on the day of the copy: the same rows, the
same ids and the same password hashes in both databases, each value in its own
database's type (0/1 becoming boolean, TEXT timestamps becoming timestamptz, JSON text
becoming jsonb), and on PostgreSQL every id sequence set past the copied ids. Timestamps
are relative to `now` and whole seconds, and none lies within an hour of the 7-day
boundary the statistics use.

The seeded users and their passwords are in `SEED_PASSWORDS`; `admin` is the admin.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .auth import hash_password

SEED_PASSWORDS: dict[str, str] = {
    "admin": "admin-demo-pass",
    "alice": "alice-demo-pass",
    "bob": "bob-demo-pass",
    "carol": "carol-demo-pass",
    "dave": "dave-demo-pass",
}
ADMIN = "admin"

COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "username", "password_hash", "is_admin", "created_at"),
    "moods": ("id", "user_id", "score", "note", "tags", "sleep_hours", "created_at"),
    "journal_entries": ("id", "user_id", "title", "body", "is_private", "created_at",
                        "updated_at"),
    "messages": ("id", "sender_id", "recipient_id", "body", "is_read", "created_at"),
    "points": ("user_id", "points", "streak_days", "last_active", "updated_at"),
    "achievements": ("id", "user_id", "badge", "earned_at"),
}
"""The columns of each seeded table, in the order of the row tuples."""


@dataclass(frozen=True, slots=True)
class SeedData:
    """Rows per table (tuples in COLUMNS order, Python values: bool, datetime in UTC,
    date, list for JSON), in insertion order; tables in an order that satisfies
    foreign keys."""

    rows: dict[str, tuple[tuple[Any, ...], ...]]


@functools.cache
def _password_hash(password: str) -> str:
    return hash_password(password)


_ENTRIES = (
    (2, "Morning Walk by the River", "Felt Calm after the Walk. Sleep was better.", False),
    (2, "Work Stress", "Deadline Anxiety again; tried the Breathing exercise.", True),
    (2, "Gratitude List", "Coffee with Bob, Sunshine, a good Book.", False),
    (3, "First Session", "Therapist suggested a Sleep diary.", True),
    (3, "Running", "Ran 5k. Legs tired, Mood great.", False),
    (4, "Moving House", "Boxes everywhere. Stress and Excitement.", False),
)

_MESSAGES = (
    (2, 3, "Hi Bob, how was the session?", True),
    (3, 2, "Good! The Sleep diary idea is interesting.", True),
    (2, 3, "Want to walk by the river on Sunday?", False),
    (4, 2, "Alice, can you help me move on Saturday?", False),
    (5, 3, "Bob, the running club meets at 7.", False),
    (3, 5, "Thanks Dave, see you there.", True),
)


def seed_data(now: datetime | None = None) -> SeedData:
    """The demo's starting rows, with timestamps relative to `now` (UTC)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    users = tuple(
        (uid, name, _password_hash(SEED_PASSWORDS[name]), name == ADMIN,
         now - timedelta(days=40 - uid))
        for uid, name in enumerate(SEED_PASSWORDS, start=1)
    )
    moods = []
    for user_id in (2, 3, 4):
        for days_ago in range(9, -1, -1):
            if (days_ago + user_id) % 4 == 0:
                continue
            score = 1 + (days_ago * 3 + user_id * 5) % 10
            note = ("", None, "Slept badly", "Good day at work", "Tired")[(days_ago + user_id) % 5]
            tags = [("sleep", "work", "family", "exercise")[(days_ago + k) % 4]
                    for k in range(days_ago % 3)]
            sleep = (None, 7.5, 6.0, 8.25)[(days_ago + user_id) % 4]
            created = now - timedelta(days=days_ago, hours=1 + user_id)
            moods.append((len(moods) + 1, user_id, score, note, tags, sleep, created))
    entries = tuple(
        (i, user_id, title, body, private, now - timedelta(days=20 - i, hours=2),
         now - timedelta(days=20 - i, hours=2))
        for i, (user_id, title, body, private) in enumerate(_ENTRIES, start=1)
    )
    messages = tuple(
        (i, sender, recipient, body, read, now - timedelta(days=3, hours=12 - i))
        for i, (sender, recipient, body, read) in enumerate(_MESSAGES, start=1)
    )
    today = now.date()
    points = (
        (2, 120, 3, today - timedelta(days=1), now - timedelta(days=1)),
        (3, 40, 1, today - timedelta(days=3), now - timedelta(days=3)),
    )
    achievements = (
        (1, 2, "first_mood", now - timedelta(days=30)),
        (2, 2, "points_10", now - timedelta(days=30)),
        (3, 2, "points_50", now - timedelta(days=12)),
        (4, 2, "points_100", now - timedelta(days=3)),
        (5, 3, "first_mood", now - timedelta(days=6)),
        (6, 3, "points_10", now - timedelta(days=6)),
    )
    return SeedData(rows={
        "users": users, "moods": tuple(moods), "journal_entries": entries,
        "messages": messages, "points": points, "achievements": achievements,
    })


async def seed(db_path: str | Path | None = None, dsn: str | None = None, *,
               now: datetime | None = None) -> SeedData:
    """Replace the demo tables of the SQLite file and/or the PostgreSQL database with
    the same starting data; returns the data written."""
    from . import candidate_database, legacy_files

    data = seed_data(now)
    if db_path is not None:
        await legacy_files.write_seed(db_path, data)
    if dsn is not None:
        await candidate_database.write_seed(dsn, data)
    return data

