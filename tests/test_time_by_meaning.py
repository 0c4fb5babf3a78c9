"""Time by meaning through a real proxy, with row capture on real SQLite and PostgreSQL.

Two builds of a notes service stamp each note with their own "now" (in the row and in
the reply) and answer with the time they served the request. The candidate (the shadow)
takes several seconds over every request, so each of its stamps is that much later than
the primary's, and its writes reach it later and later (each waits for the one before);
edits made once it caught up carry, in their row images, the `created_at` those late
inserts stamped. With no rule in the config: zero mismatches, and the replay lag shows
the delay. A
candidate that stores its stamp an hour off (a time-zone bug) or a day off is still
caught, in the row and in the reply.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import aiosqlite
import asyncpg
import pytest
from aiohttp import web

from shadow.config import parse_config
from shadow.demo.runner import install_capture
from tests.support import running, sample_value, settle

DB = web.AppKey("db", object)
DELAY = 3.0
"""Seconds the candidate takes over each request."""
NOTES = 3


def _routes(app: web.Application, insert, fetch, update, delay: float) -> web.Application:
    async def create(request):
        await asyncio.sleep(delay)
        data = await request.json()
        row = await insert(app[DB], str(data["title"]))
        return web.json_response({**row, "served_at": datetime.now(UTC).isoformat()},
                                 status=201)

    async def read(request):
        await asyncio.sleep(delay)
        row = await fetch(app[DB], int(request.match_info["id"]))
        return web.json_response({**row, "served_at": datetime.now(UTC).isoformat()})

    async def edit(request):  # no delay: the shadow replays edits at once
        data = await request.json()
        row = await update(app[DB], int(request.match_info["id"]), str(data["title"]))
        return web.json_response(row)

    app.router.add_post("/notes", create)
    app.router.add_get("/notes/{id}", read)
    app.router.add_put("/notes/{id}", edit)
    return app


def legacy_app(path: str) -> web.Application:
    app = web.Application()

    async def connect(app):
        app[DB] = await aiosqlite.connect(path)
        yield
        await app[DB].close()

    async def insert(db, title):
        stamp = datetime.now(UTC).isoformat()
        cur = await db.execute("INSERT INTO notes (title, created_at) VALUES (?, ?)",
                               (title, stamp))
        await db.commit()
        return {"id": cur.lastrowid, "title": title, "created_at": stamp}

    async def fetch(db, note_id):
        async with db.execute("SELECT id, title, created_at FROM notes WHERE id = ?",
                              (note_id,)) as cur:
            row = await cur.fetchone()
        return {"id": row[0], "title": row[1], "created_at": row[2]}

    async def update(db, note_id, title):
        await db.execute("UPDATE notes SET title = ? WHERE id = ?", (title, note_id))
        await db.commit()
        return await fetch(db, note_id)

    app.cleanup_ctx.append(connect)
    return _routes(app, insert, fetch, update, 0.0)


def candidate_app(dsn: str, shift: timedelta) -> web.Application:
    """The PostgreSQL build, `DELAY` seconds over each request; it stores `now()` plus
    `shift` (none for a faithful port)."""
    app = web.Application()

    async def connect(app):
        app[DB] = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        yield
        await app[DB].close()

    def shown(row) -> dict:
        return {"id": row["id"], "title": row["title"],
                "created_at": row["created_at"].isoformat()}

    async def insert(pool, title):
        return shown(await pool.fetchrow(
            "INSERT INTO notes (title, created_at) VALUES ($1, now() + $2) "
            "RETURNING id, title, created_at", title, shift))

    async def fetch(pool, note_id):
        return shown(await pool.fetchrow(
            "SELECT id, title, created_at FROM notes WHERE id = $1", note_id))

    async def update(pool, note_id, title):
        return shown(await pool.fetchrow(
            "UPDATE notes SET title = $1 WHERE id = $2 RETURNING id, title, created_at",
            title, note_id))

    app.cleanup_ctx.append(connect)
    return _routes(app, insert, fetch, update, DELAY)


async def run(aiohttp_server, pg_dsn, tmp_path, shift: timedelta):
    """NOTES notes written and read back through the proxy; (comparisons, runtime)."""
    sqlite_path = tmp_path / "notes.sqlite3"
    async with aiosqlite.connect(sqlite_path) as db:
        await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "title TEXT NOT NULL, created_at TEXT NOT NULL)")
        await db.commit()
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL, "
                       "created_at timestamptz NOT NULL)")
    await conn.close()
    legacy = await aiohttp_server(legacy_app(str(sqlite_path)))
    candidate = await aiohttp_server(candidate_app(pg_dsn, shift))
    config = parse_config({
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
        "backends": {"legacy": {"url": str(legacy.make_url("")),
                                "database": f"sqlite:///{sqlite_path}"},
                     "candidate": {"url": str(candidate.make_url("")), "database": pg_dsn}},
        "store": {"path": str(tmp_path / "state.db")},
        "noise": {"share": 0.0},
    })
    await install_capture(config)
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        comparisons = []
        runtime.verifier.listeners.append(comparisons.append)
        base = f"http://127.0.0.1:{runtime.proxy_port}"
        for i in range(NOTES):
            async with http.post(base + "/notes", json={"title": f"note {i}"}) as reply:
                assert reply.status == 201
        for i in range(1, NOTES + 1):
            async with http.get(f"{base}/notes/{i}") as reply:
                assert reply.status == 200
        await settle(runtime, 2 * NOTES, timeout=8 * NOTES * DELAY)
        # caught up: each edit reaches the shadow at once, while the `created_at` in its
        # image was stamped by an insert the shadow replayed seconds late
        for i in range(1, NOTES + 1):
            async with http.put(f"{base}/notes/{i}", json={"title": f"edited {i}"}) as reply:
                assert reply.status == 200
        await settle(runtime, 3 * NOTES, timeout=8 * NOTES * DELAY)
    return comparisons, runtime


async def test_a_shadow_seconds_behind_makes_no_timestamp_mismatch(aiohttp_server, pg_dsn,
                                                                   tmp_path):
    comparisons, runtime = await run(aiohttp_server, pg_dsn, tmp_path, timedelta(0))
    assert [c.verdict for c in comparisons] == ["match"] * 3 * NOTES, [
        (c.exchange.target, [(d.path, d.primary, d.shadow) for d in c.differences])
        for c in comparisons]
    assert runtime.rows is not None and all(c.shadow.rows for c in comparisons
                                            if c.exchange.method in ("POST", "PUT"))
    # each shadow write waited for the one before it: the lag grew by about DELAY each
    assert runtime.verifier.lag.allowance >= DELAY
    assert sample_value(runtime, "shadow_replay_lag_seconds") > 0


@pytest.mark.parametrize("shift", [timedelta(hours=1), timedelta(days=-1)], ids=["hour", "day"])
async def test_a_stamp_an_hour_or_a_day_off_is_still_caught(aiohttp_server, pg_dsn, tmp_path,
                                                            shift):
    comparisons, _ = await run(aiohttp_server, pg_dsn, tmp_path, shift)
    places = {(c.exchange.method, d.kind, re.sub(r"\[[^\]]*\]", "", d.path))
              for c in comparisons for d in c.differences}
    assert ("POST", "row_changed", "notes.created_at") in places, places
    assert ("POST", "body", "$.created_at") in places, places
    assert ("GET", "body", "$.created_at") in places, places
    assert ("PUT", "row_changed", "notes.created_at") in places, places
    assert not {p for p in places if "served_at" in p[2] or "title" in p[2]}
