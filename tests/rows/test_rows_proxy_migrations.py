"""A running proxy follows the app's own migrations and keeps verifying what they made.

The legacy build (SQLite, one connection per request) and the candidate (PostgreSQL)
store whatever columns a request names in their current items table. While the proxy
serves, both builds migrate: ADD COLUMN, RENAME COLUMN, DROP COLUMN, RENAME TO, CREATE
TABLE, DROP TABLE. Every write still succeeds, a faithful write still matches, and a
value the candidate stores wrongly in a column that did not exist at start-up is still a
`row_changed` on that column. The schema changes show in `/api/status`, in
`shadow_capture_schema_changes_total` and in the log.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiohttp
import aiosqlite
import asyncpg
from aiohttp import web

from shadow.config import parse_config
from shadow.demo.runner import install_capture
from tests.rows.apps import POOL, with_pool
from tests.support import admin_url, config_data, reader, running, sample_value, settle



def legacy_app(path: str, where: dict) -> web.Application:
    async def create(request):
        data = await request.json()
        cols = ", ".join(data)
        async with aiosqlite.connect(path) as db:
            cur = await db.execute(f"INSERT INTO {where[request.match_info['kind']]} ({cols}) "
                                   f"VALUES ({', '.join('?' for _ in data)})", list(data.values()))
            await db.commit()
        return web.json_response({"id": cur.lastrowid}, status=201)

    app = web.Application()
    app.router.add_post("/{kind}", create)
    return app


def candidate_app(dsn: str, where: dict) -> web.Application:
    """Stores "wrong" as "WRONG" (a bug the rows show and the reply does not)."""

    async def create(request):
        data = await request.json()
        values = ["WRONG" if v == "wrong" else v for v in data.values()]
        new_id = await request.app[POOL].fetchval(
            f"INSERT INTO {where[request.match_info['kind']]} ({', '.join(data)}) VALUES "
            f"({', '.join(f'${i + 1}' for i in range(len(data)))}) RETURNING id", *values)
        return web.json_response({"id": new_id}, status=201)

    app = web.Application()
    app.router.add_post("/{kind}", create)
    return with_pool(app, dsn)


async def test_the_running_proxy_follows_each_migration_and_verifies_new_columns(
        aiohttp_server, pg_dsn, tmp_path, caplog):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, dropme TEXT)")
    conn.close()
    pg = await asyncpg.connect(pg_dsn)
    await pg.execute("CREATE TABLE items (id serial PRIMARY KEY, name text, dropme text)")
    where = {"items": "items", "tags": "tags"}
    legacy = await aiohttp_server(legacy_app(str(path), where))
    candidate = await aiohttp_server(candidate_app(pg_dsn, where))
    config = parse_config(config_data(
        tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
        backends={"legacy": {"url": str(legacy.make_url("")), "database": f"sqlite:///{path}"},
                  "candidate": {"url": str(candidate.make_url("")), "database": pg_dsn}},
        routes=[{"template": "/{kind}", "writes": True}],
        rows={"drain_interval": 0.05}))
    await install_capture(config)
    comparisons: list = []
    caplog.set_level(logging.INFO, logger="shadow.rows")

    def migrate(sql: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(sql)
        conn.close()

    async def both(sql: str) -> None:
        """The same migration on both builds, then a drain that saw it."""
        seen = runtime.rows.captures["legacy"].schema_changes  # before: a drain may see it
        await asyncio.to_thread(migrate, sql)                  # while PostgreSQL migrates
        await pg.execute(sql)
        async with asyncio.timeout(30):
            while runtime.rows.captures["legacy"].schema_changes == seen:
                await asyncio.sleep(0.02)

    async def post(kind: str, body: dict) -> tuple:
        concluded = runtime.verifier.concluded  # before: it may conclude before we look
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{runtime.proxy_port}/{kind}",
                                    json=body) as resp:
                assert resp.status == 201, await resp.text()
        # Past rows.attribution_timeout (10 s) a lost change concludes as a mismatch the
        # assertions name; the wait itself is only bounded for a loaded machine.
        await settle(runtime, concluded + 1, timeout=40.0)
        last = comparisons[-1]
        return last.verdict, [(d.kind, d.path) for d in last.differences]

    try:
        async with running(config) as runtime:
            runtime.verifier.listeners.append(comparisons.append)
            assert await post("items", {"name": "pen"}) == ("match", [])

            await both("ALTER TABLE items ADD COLUMN colour TEXT")
            assert await post("items", {"name": "ink", "colour": "red"}) == ("match", [])
            verdict, found = await post("items", {"name": "cap", "colour": "wrong"})
            assert (verdict, found) == ("mismatch", [("row_changed", "items[3].colour")])

            await both("ALTER TABLE items RENAME COLUMN colour TO shade")
            assert await post("items", {"name": "nib", "shade": "blue"}) == ("match", [])
            assert (await post("items", {"name": "lid", "shade": "wrong"}))[1] == [
                ("row_changed", "items[5].shade")]

            await both("ALTER TABLE items DROP COLUMN dropme")
            assert await post("items", {"name": "box", "shade": "grey"}) == ("match", [])

            await both("ALTER TABLE items RENAME TO goods")
            where["items"] = "goods"
            assert await post("items", {"name": "bag", "shade": "tan"}) == ("match", [])
            assert (await post("items", {"name": "tin", "shade": "wrong"}))[1] == [
                ("row_changed", "goods[8].shade")]

            await both("CREATE TABLE tags (id integer PRIMARY KEY, label text)")
            assert await post("tags", {"id": 1, "label": "new"}) == ("match", [])
            assert (await post("tags", {"id": 2, "label": "wrong"}))[1] == [
                ("row_changed", "tags[2].label")]

            await both("DROP TABLE tags")
            assert await post("items", {"name": "end", "shade": "red"}) == ("match", [])

            await runtime.save_rows()
            async with reader() as session:
                async with session.get(admin_url(runtime, "/api/status")) as resp:
                    status = await resp.json()
            legacy_capture = status["rows"]["capture"]["legacy"]
            assert legacy_capture["schema_changes"] == 6
            assert legacy_capture["last_schema_change"]["dropped"] == ["tags"]
            assert legacy_capture["healthy"] and legacy_capture["problems"] == []
            assert runtime.rows.status["legacy"].captured == ("goods",)
            assert sample_value(runtime, "shadow_capture_schema_changes_total",
                                backend="legacy") == 6
    finally:
        await pg.close()
    assert all(c.shadow is not None for c in comparisons)
    followed = [r for r in caplog.records if r.getMessage() == "schema changed; capture follows it"]
    assert len(followed) >= 6
    assert any(getattr(r, "recaptured", None) == ["tags"] for r in followed)
