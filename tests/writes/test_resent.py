"""A read the proxy sends again on its own (an A/A probe, a recheck) may write where its
first send did not: a session expired meanwhile answers 401 and audits it. Its window
in row attribution makes that row its own: neither an outside write charged to no one,
nor a row of another exchange; and the key it took moves its table's sequence on that
side, so the next audit row both builds write is no key difference.

The builds here audit every second `GET /thing` they serve: the client's read writes
nothing on either build, the A/A probe of it, sent to the primary's build only, writes
an audit row there. Then both builds audit a `POST /events`.
"""

from __future__ import annotations

import asyncio

import aiohttp
import aiosqlite
import asyncpg
import pytest
from aiohttp import web

from tests.support import rows_proxy, settle

pytestmark = pytest.mark.postgres

SERVED = web.AppKey("served", list)


def build(insert) -> web.Application:
    app = web.Application()
    app[SERVED] = []

    async def thing(request):
        app[SERVED].append(request.path)
        if len(app[SERVED]) % 2 == 0:
            await insert("served twice")
        return web.json_response({"ok": True})

    async def event(request):
        await insert((await request.json())["what"])
        return web.json_response({"ok": True}, status=201)

    app.router.add_get("/thing", thing)
    app.router.add_post("/events", event)
    return app


async def test_a_row_a_read_sent_again_writes_is_its_own_and_moves_its_sequence(
        aiohttp_server, pg_dsn, tmp_path):
    path = tmp_path / "audit.sqlite3"
    async with aiosqlite.connect(path) as db:
        await db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)")
        await db.commit()
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE audit (id serial PRIMARY KEY, what text)")
    await conn.close()

    async def legacy_insert(what):
        async with aiosqlite.connect(path) as db:
            await db.execute("INSERT INTO audit (what) VALUES (?)", (what,))
            await db.commit()

    async def candidate_insert(what):
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("INSERT INTO audit (what) VALUES ($1)", what)
        finally:
            await conn.close()

    legacy = await aiohttp_server(build(legacy_insert))
    candidate = await aiohttp_server(build(candidate_insert))
    async with rows_proxy(str(legacy.make_url("")), path, str(candidate.make_url("")), pg_dsn,
                          tmp_path, [{"template": "/thing"}, {"template": "/events"}]) as (
            base, comparisons, runtime):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/thing") as reply:
                assert reply.status == 200
            await settle(runtime, 1)
            attribution = runtime.writes.attribution
            async with asyncio.timeout(10):
                while attribution.resent_rows == 0:  # the probe's audit row, drained
                    await asyncio.sleep(0.02)
            async with session.post(f"{base}/events", json={"what": "both"}) as reply:
                assert reply.status == 201
            await settle(runtime, 2)
        status = attribution.status()
    assert (len(legacy.app[SERVED]), len(candidate.app[SERVED])) == (2, 1)  # and the probe
    differences = [(c.exchange.target, d.kind, d.path) for c in comparisons for d in c.differences]
    assert differences == [], differences
    assert status["resent_rows"] == 1 and status["outside"]["total"] == 0, status
    assert runtime.rows.keymap.shadow_key("audit", (2,)) == (1,)
