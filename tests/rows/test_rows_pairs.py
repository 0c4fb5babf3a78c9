"""Both databases at once: the same writes on the legacy SQLite file and the candidate
PostgreSQL database, captured, drained and compared as the verifier does it."""

import sqlite3

import asyncpg
import pytest

from shadow.rows.diff import diff_rows
from shadow.rows.keymap import KeyMap
from shadow.rows.model import ColumnRule, RowRules
from shadow.rows.postgres import PostgresCapture
from shadow.rows.sqlite import SqliteCapture
from shadow.verdict import Kind

pytestmark = pytest.mark.postgres

LEGACY = """
CREATE TABLE entries (id INTEGER PRIMARY KEY, note TEXT, done BOOLEAN, at DATETIME,
                      score REAL, meta TEXT, raw BLOB);
CREATE TABLE moods (id INTEGER PRIMARY KEY, entry_id INTEGER REFERENCES entries(id), mood TEXT);
"""
CANDIDATE = """
CREATE TABLE entries (id serial PRIMARY KEY, note text CHECK (note <> 'bad'), done boolean,
                      at timestamptz, score numeric(10, 2), meta jsonb, raw bytea);
CREATE TABLE moods (id serial PRIMARY KEY, entry_id integer REFERENCES entries(id), mood text);
"""
ENTRY = "INSERT INTO entries (note, done, at, score, meta, raw) VALUES "


class Pair:
    """Two apps (one connection each), two captures, one key map: one exchange at a time."""

    def __init__(self, legacy, candidate, legacy_capture, candidate_capture):
        self.legacy, self.candidate = legacy, candidate
        self.legacy_capture, self.candidate_capture = legacy_capture, candidate_capture
        self.keymap = KeyMap()
        self.rules = RowRules()

    async def exchange(self, legacy_sql, candidate_sql, *params):
        """Run one write on each side, drain both logs, compare the rows."""
        self.legacy.execute(legacy_sql, params)
        if candidate_sql:
            await self.candidate.execute(candidate_sql, *params)
        return diff_rows(
            await self.legacy_capture.drain(), await self.candidate_capture.drain(),
            primary_tables=await self.legacy_capture.introspect(),
            shadow_tables=await self.candidate_capture.introspect(),
            rules=self.rules, keymap=self.keymap)

    async def same(self, sql, *params):
        return await self.exchange(sql.replace("$1", "?").replace("$2", "?"), sql, *params)


@pytest.fixture
async def pair(tmp_path, pg_dsn):
    legacy = sqlite3.connect(tmp_path / "legacy.db", isolation_level=None)
    candidate = await asyncpg.connect(pg_dsn)
    try:
        legacy.executescript(LEGACY)
        await candidate.execute(CANDIDATE)
        async with SqliteCapture(tmp_path / "legacy.db") as lcap, PostgresCapture(pg_dsn) as ccap:
            await lcap.install()
            await ccap.install()
            yield Pair(legacy, candidate, lcap, ccap)
    finally:
        await candidate.close()
        legacy.close()


async def test_dialect_renderings_of_the_same_row_are_equal_and_counted(pair):
    result = await pair.exchange(
        ENTRY + "('a', 1, '2026-02-04 15:47:20', 15.0, '{\"b\": 1, \"a\": [1]}', x'00ff')",
        ENTRY + "('a', true, '2026-02-04 15:47:20+00', 15, '{\"a\": [1], \"b\": 1}', '\\x00ff')")
    assert result.differences == ()
    assert result.normalised >= 3  # 1 vs true, text vs timestamptz, JSON text vs jsonb
    result = await pair.same("UPDATE entries SET done = $1 WHERE id = 1", False)
    assert result.differences == () and result.normalised >= 1


async def test_real_differences_in_each_pair_of_types_are_found(pair):
    result = await pair.exchange(
        ENTRY + "('a', 0, '2026-02-04 15:47:20', 1.5, '{\"a\": 2}', x'00ff')",
        ENTRY + "('a', true, '2026-02-04 16:47:20+00', 1.6, '{\"a\": 1}', '\\x00fe')")
    assert sorted(d.path for d in result.differences) == [
        "entries[1].at", "entries[1].done", "entries[1].meta", "entries[1].raw",
        "entries[1].score"]
    assert all(d.kind == Kind.ROW_CHANGED for d in result.differences)


async def test_real_against_numeric_needs_a_tolerance(pair):
    sql = "INSERT INTO entries (score) VALUES (0.1 + 0.2)"
    [difference] = (await pair.same(sql)).differences
    assert difference.path == "entries[1].score"
    pair.rules = RowRules.build(columns={"entries.score": ColumnRule(tolerance=0.005)})
    assert (await pair.same(sql)).differences == ()


async def test_empty_text_against_null_unless_configured(pair):
    legacy = "INSERT INTO entries (note) VALUES ('')"
    candidate = "INSERT INTO entries (note) VALUES (NULL)"
    [difference] = (await pair.exchange(legacy, candidate)).differences
    assert (difference.path, difference.primary, difference.shadow) == ("entries[1].note", "", None)
    pair.rules = RowRules.build(columns={"*.note": ColumnRule(empty_is_null=True)})
    result = await pair.exchange(legacy, candidate)
    assert result.differences == () and result.normalised == 1


async def test_burnt_sequence_value_gives_one_difference_then_none(pair):
    add = "INSERT INTO entries (note) VALUES ('n')"
    assert (await pair.same(add)).differences == ()
    with pytest.raises(asyncpg.CheckViolationError):
        await pair.candidate.execute("INSERT INTO entries (note) VALUES ('bad')")
    burnt = await pair.same(add)  # legacy id 2, candidate id 3
    assert [(d.kind, d.path, d.primary, d.shadow) for d in burnt.differences] == [
        (Kind.ROW_CHANGED, "entries[2].id", 2, 3)]
    assert (await pair.same(add)).differences == ()  # legacy 3, candidate 4
    wrong_row = await pair.same("UPDATE entries SET note = 'w' WHERE id = $1", 2)
    assert [(d.kind, d.path) for d in wrong_row.differences] == [(Kind.ROW_MISSING, "entries[2]")]
    assert (await pair.exchange("UPDATE entries SET note = 'm' WHERE id = 2",
                                "UPDATE entries SET note = 'm' WHERE id = 3")).differences == ()
    child = await pair.exchange("INSERT INTO moods (entry_id, mood) VALUES (2, 'ok')",
                                "INSERT INTO moods (entry_id, mood) VALUES (3, 'ok')")
    assert child.differences == ()
    assert pair.keymap.shadow_key("entries", (3,)) == (4,)


async def test_write_the_shadow_never_committed_is_a_missing_row(pair):
    transaction = pair.candidate.transaction()
    await transaction.start()
    result = await pair.same("INSERT INTO entries (note) VALUES ('lost')")
    await transaction.rollback()
    [missing] = result.differences
    assert (missing.kind, missing.path) == (Kind.ROW_MISSING, "entries[1]")
    assert missing.primary["note"] == "lost" and missing.shadow is None


async def test_replace_against_upsert_compares_the_final_rows(pair):
    await pair.same("INSERT INTO entries (id, note) VALUES (7, 'a')")
    result = await pair.exchange(
        "INSERT OR REPLACE INTO entries (id, note) VALUES (7, 'b')",
        "INSERT INTO entries (id, note) VALUES (7, 'b') "
        "ON CONFLICT (id) DO UPDATE SET note = excluded.note")
    assert result.differences == ()
