"""Every value a database driver returns can be stored in a sample: real PostgreSQL
values (asyncpg) and SQLite values, through the real state store."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import asyncpg

from shadow import jsonable
from shadow.store import Store

SIG = ("GET /a body $.x", "GET", "/a", "body", "$.x")

QUERY = """SELECT 12.50::numeric AS price, interval '1 day 2 hours' AS span,
       timestamptz '2026-02-04 15:47:20+00' AS at, date '2026-02-04' AS day,
       time '15:47:20' AS clock, '\\x00ff'::bytea AS raw,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, int4range(1, 5) AS span_ids,
       'nan'::numeric AS not_a_number, ARRAY[1.5::numeric, 2] AS prices,
       '{"a": 1}'::jsonb AS doc, inet '10.0.0.1' AS addr"""


async def test_every_postgres_value_type_is_stored(pg_dsn, tmp_path):
    conn = await asyncpg.connect(pg_dsn)
    try:
        record = await conn.fetchrow(QUERY)
    finally:
        await conn.close()
    row = dict(record)
    assert isinstance(row["price"], Decimal) and isinstance(row["span"], dt.timedelta)
    store = await Store.open(str(tmp_path / "state.db"), flush_interval=3600)
    try:
        store.record(signatures=[SIG], exchange_id="e1", method="GET", route="/a",
                     sample={"row": row, "record": record, "view": memoryview(b"ab")})
        await store.flush()
        [kept] = await store.samples()
    finally:
        await store.close()
    got = kept["sample"]["row"]
    assert got["price"] == "12.50" and got["span"] == 93600.0
    assert got["at"].startswith("2026-02-04T15:47:20") and got["day"] == "2026-02-04"
    assert got["clock"] == "15:47:20" and got["id"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert got["raw"] == {"bytes": 2, "base64": "AP8="}
    assert got["span_ids"] == {"lower": 1, "upper": 5, "bounds": "[)", "empty": False}
    assert got["not_a_number"] == "NaN" and got["prices"] == ["1.5", "2"]
    assert kept["sample"]["record"]["price"] == "12.50"
    assert kept["sample"]["view"] == {"bytes": 2, "base64": "YWI="}


def test_sqlite_values_and_odd_python_values_are_json():
    db = sqlite3.connect(":memory:")
    row = db.execute("SELECT 1, 2.5, 'x', x'0102', NULL").fetchone()
    assert jsonable.dumps({"row": row, "tags": {"b", "a"}, "obj": Exception()}) \
        == b'{"row":[1,2.5,"x",{"bytes":2,"base64":"AQI="},null],"tags":["a","b"],' \
           b'"obj":"<Exception: >"}'
    assert jsonable.dumps({1: dt.timedelta(seconds=-1.5)}) == b'{"1":-1.5}'
