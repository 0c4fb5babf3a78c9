"""The state store's schema: the first schema, then numbered steps (`MIGRATIONS` of
shadow.findings.storage, counted in PRAGMA user_version), each applied once, so an existing
state file moves forward in place.
"""

from __future__ import annotations

import aiosqlite

from shadow.findings.storage import MIGRATIONS

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (
    signature TEXT PRIMARY KEY, method TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL,
    path TEXT NOT NULL, count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signature_hours (
    signature TEXT NOT NULL, hour INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (signature, hour));
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, signature TEXT NOT NULL, exchange_id TEXT NOT NULL,
    route TEXT NOT NULL, method TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_signature ON samples (signature, id);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (created_at);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL,
    from_mode TEXT, to_mode TEXT, forced INTEGER NOT NULL, reason TEXT NOT NULL,
    who TEXT NOT NULL, gate TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    what TEXT NOT NULL);
"""


async def migrate(db: aiosqlite.Connection) -> None:
    """Apply the schema steps not applied yet (PRAGMA user_version counts them)."""
    async with db.execute("PRAGMA user_version") as cur:
        done = (await cur.fetchone())[0]
    for number, step in enumerate(MIGRATIONS[done:], done + 1):
        await db.executescript(step)
        await db.execute(f"PRAGMA user_version = {number}")
