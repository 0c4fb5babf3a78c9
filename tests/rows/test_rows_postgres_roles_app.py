"""A real app writing as a DML-only role while the proxy verifies its rows.

The usual production set-up: a migrator role owns the schema and installs capture (and
the proxy reads the changes as that role); the candidate app connects as a role that may
only read and write its tables. Both capture methods: every write of the app succeeds,
is captured and is compared with the legacy build's rows."""

from __future__ import annotations

import sqlite3

import aiohttp
import aiosqlite
import pytest
from aiohttp import web

from shadow.config import parse_config
from shadow.demo.runner import install_capture
from tests.rows.test_rows_postgres_roles import roles  # noqa: F401  (fixture)
from tests.rows.apps import POOL, with_pool
from tests.support import config_data, running, settle

pytestmark = pytest.mark.postgres


def legacy_app(path: str) -> web.Application:
    async def create(request):
        data = await request.json()
        async with aiosqlite.connect(path) as db:
            cur = await db.execute("INSERT INTO items (name, qty) VALUES (?, ?)",
                                   (data["name"], data["qty"]))
            await db.commit()
        return web.json_response({"id": cur.lastrowid}, status=201)

    async def add(request):
        async with aiosqlite.connect(path) as db:
            await db.execute("UPDATE items SET qty = qty + 1 WHERE id = ?",
                             (int(request.match_info["id"]),))
            await db.commit()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/items", create)
    app.router.add_post("/items/{id}/more", add)
    return app


def candidate_app(app_dsn: str) -> web.Application:
    async def create(request):
        data = await request.json()
        new_id = await request.app[POOL].fetchval(
            "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id", data["name"], data["qty"])
        return web.json_response({"id": new_id}, status=201)

    async def add(request):
        await request.app[POOL].execute("UPDATE items SET qty = qty + 1 WHERE id = $1",
                                        int(request.match_info["id"]))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/items", create)
    app.router.add_post("/items/{id}/more", add)
    return with_pool(app, app_dsn)


@pytest.mark.parametrize("method", ["triggers", "decoding"])
async def test_an_app_writing_as_a_dml_only_role_is_verified(roles, method, aiohttp_server,  # noqa: F811
                                                             tmp_path):
    owner_dsn, app_dsn = roles
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);"
                           "CREATE TABLE tags (item_id INTEGER, tag TEXT, PRIMARY KEY (item_id, tag));"
                           "INSERT INTO items (name, qty) VALUES ('pen', 1);")
    conn.close()
    legacy = await aiohttp_server(legacy_app(str(path)))
    candidate = await aiohttp_server(candidate_app(app_dsn))
    config = parse_config(config_data(
        tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
        backends={"legacy": {"url": str(legacy.make_url("")), "database": f"sqlite:///{path}"},
                  "candidate": {"url": str(candidate.make_url("")), "database": owner_dsn}},
        routes=[{"template": "/items", "writes": True},
                {"template": "/items/{id}/more", "writes": True}],
        rows={"postgres_capture": method}))
    await install_capture(config)
    comparisons: list = []
    async with running(config) as runtime:
        assert runtime.rows.captures["candidate"].installed == method
        runtime.verifier.listeners.append(comparisons.append)
        async with aiohttp.ClientSession() as session:
            for target, body in (("/items", {"name": "ink", "qty": 2}), ("/items/1/more", {}),
                                 ("/items/2/more", {}), ("/items", {"name": "cap", "qty": 5})):
                async with session.post(f"http://127.0.0.1:{runtime.proxy_port}{target}",
                                        json=body) as resp:
                    assert resp.status in (200, 201), await resp.text()
        await settle(runtime, 4)
    assert [c.verdict for c in comparisons] == ["match"] * 4, [c.differences for c in comparisons]
    captured = [[(r.table, r.op, r.key) for r in c.shadow.rows] for c in comparisons]
    assert captured == [[("items", "insert", (2,))], [("items", "update", (1,))],
                        [("items", "update", (2,))], [("items", "insert", (3,))]]
