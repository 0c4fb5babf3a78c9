"""Capture by logical decoding: a real server with wal_level=logical (the embedded one)."""

import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from shadow.rows.postgres import PostgresCapture
from shadow.rows.postgres_decoding import parse_change, parse_changes, unable
from tests.rows.test_rows_postgres import CATALOGUE, SCHEMA

pytestmark = pytest.mark.postgres


@pytest.fixture
async def app(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        if await conn.fetchval("SHOW wal_level") != "logical":
            pytest.fail("the test server must run with wal_level=logical (see shadow.pgserver)")
        await conn.execute(SCHEMA)
        yield conn
    finally:
        await conn.close()


async def snapshot(conn):
    return [await conn.fetch(query) for query in CATALOGUE]


async def test_decoding_adds_nothing_to_the_schema_and_captures_every_write(app, pg_dsn):
    before = await snapshot(app)
    async with PostgresCapture(pg_dsn) as capture:
        status = await capture.install()
        assert status.method == "decoding" and status.healthy, status
        assert "logical decoding" in capture.reason and "max_slot_wal_keep_size" in capture.reason
        assert "slot shadow_" in status.detail and "audit" in status.unverifiable
        assert await snapshot(app) == before
        start = await capture.now()
        await app.execute("INSERT INTO entries (note, done, score, meta, raw, at) VALUES "
                          "('it''s', true, 2.5, '{\"k\": [1.5]}', '\\x0102', "
                          "'2026-02-04 15:47:20+00')")
        await app.execute("UPDATE tags SET tag = 'y' WHERE tag = 'x'")
        await app.execute('INSERT INTO "Odd ""Name""" VALUES (\'a b\', 1)')
        await app.execute("DELETE FROM entries WHERE note = 'it''s'")
        await app.execute("INSERT INTO audit VALUES ('not captured: no key')")
        changes = await capture.drain()
        assert [(c.table, c.op, c.key) for c in changes] == [
            ("entries", "insert", (2,)), ("tags", "delete", (1, "x")), ("tags", "insert", (1, "y")),
            ('Odd "Name"', "insert", ("a b",)), ("entries", "delete", (2,))]
        assert changes[0].after == {
            "id": 2, "note": "it's", "done": True, "at": "2026-02-04T15:47:20+00:00",
            "score": Decimal("2.50"), "meta": {"k": [Decimal("1.5")]}, "raw": b"\x01\x02"}
        assert all(start - 1 <= c.at <= time.time() + 1 for c in changes)
        assert await capture.drain() == []
        await capture.uninstall()
        assert not (await capture.status()).installed
    assert await app.fetchval("SELECT count(*) FROM pg_replication_slots") == 0


async def test_a_large_value_an_update_left_alone_is_read_from_the_table(app, pg_dsn):
    big = secrets.token_hex(20_000)
    await app.execute("INSERT INTO entries (id, note) VALUES (5, $1)", big)
    async with PostgresCapture(pg_dsn, method="decoding") as capture:
        await capture.install()
        await app.execute("UPDATE entries SET done = true WHERE id = 5")
        [change] = await capture.drain()
        assert change.after["note"] == big and change.after["done"] is True
        assert list(change.after)[:3] == ["id", "note", "done"]
        await capture.uninstall()


async def test_a_vanished_slot_is_recreated_and_the_gap_counted(app, pg_dsn):
    async with PostgresCapture(pg_dsn, method="decoding") as capture:
        await capture.install()
        slot = (await capture.status()).detail.split("slot ")[1].split(":")[0]
        await app.execute("SELECT pg_drop_replication_slot($1)", slot)
        await app.execute("INSERT INTO tags VALUES (1, 'lost')")
        assert await capture.drain() == [] and capture.lost == 1
        await app.execute("INSERT INTO tags VALUES (1, 'seen')")
        [change] = await capture.drain()
        assert change.key == (1, "seen")
        await capture.uninstall()


def test_decoding_needs_logical_wal_a_replication_role_and_a_bound_on_kept_wal():
    assert unable("logical", "1GB", True, 3) == ""
    assert "not logical" in unable("replica", "1GB", True, 3)
    assert "REPLICATION" in unable("logical", "1GB", False, 3)
    assert "without bound" in unable("logical", "-1", True, 3)
    assert "no free replication slot" in unable("logical", "1GB", True, 0)


def test_test_decoding_lines_parse_into_values():
    change = parse_change(
        'table public."Odd ""Name""": UPDATE: old-key: k[text]:\'a\'\'b\' new-tuple: '
        "k[text]:'c d' v[integer]:5 big[text]:unchanged-toast-datum n[numeric]:null "
        "f[double precision]:1.5 ok[boolean]:false tags[text[]]:'{a,b}'")
    assert (change.schema, change.table, change.op) == ("public", 'Odd "Name"', "update")
    assert change.key == {"k": "a'b"}
    assert change.new == {"k": "c d", "v": 5, "n": None, "f": Decimal("1.5"), "ok": False,
                          "tags": "{a,b}"}
    assert change.unchanged == ["big"]
    [one, two] = parse_changes([
        "BEGIN", "table public.t: INSERT: id[integer]:1",
        "table public.t: TRUNCATE: (no-flags)", "COMMIT (at 2026-02-04 15:47:20.5+00)"])
    at = datetime(2026, 2, 4, 15, 47, 20, 500000, tzinfo=UTC).timestamp()
    assert (one.op, two.op, one.at, two.at) == ("insert", "truncate", at, at)
    with pytest.raises(ValueError):
        parse_change("table public.t: INSERT: id:1")
