"""A burnt sequence value, or one extra row, costs one mismatch, not every later one.

Two builds of a tiny notes service: the legacy build (SQLite) rejects a too-long title
before inserting; the candidate (PostgreSQL) lets a CHECK constraint reject it, which
burns a sequence value, so every later note has an id one higher there. Through the proxy
with row verification, the first insert after the burn is one mismatch (the new row's
key); reads, updates and later inserts after it match, because requests to the shadow
and its replies go through the key map. A candidate that stores one note twice is one
mismatch with one difference (the extra row) in the same way.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import aiosqlite
import asyncpg
from aiohttp import web

from tests.support import rows_proxy, settle

DB = web.AppKey("db", object)


def _note_routes(app: web.Application, insert, fetch, update) -> web.Application:
    async def create(request):
        data = await request.json()
        title = str(data.get("title", ""))
        note_id = await insert(app[DB], title)
        if note_id is None:
            return web.json_response({"error": "title too long"}, status=400)
        return web.json_response({"id": note_id, "title": title}, status=201)

    async def read(request):
        row = await fetch(app[DB], int(request.match_info["id"]))
        return web.json_response(row) if row else web.json_response({"error": "no"}, status=404)

    async def change(request):
        data = await request.json()
        row = await update(app[DB], int(request.match_info["id"]), str(data["title"]))
        return web.json_response(row) if row else web.json_response({"error": "no"}, status=404)

    app.router.add_post("/notes", create)
    app.router.add_get("/notes/{id}", read)
    app.router.add_put("/notes/{id}", change)
    return app


def legacy_app(path: str) -> web.Application:
    app = web.Application()

    async def connect(app):
        app[DB] = await aiosqlite.connect(path)
        yield
        await app[DB].close()

    async def insert(db, title):
        if len(title) > 20:
            return None  # validated first: no id is used up
        cur = await db.execute("INSERT INTO notes (title) VALUES (?)", (title,))
        await db.commit()
        return cur.lastrowid

    async def fetch(db, note_id):
        async with db.execute("SELECT id, title FROM notes WHERE id = ?", (note_id,)) as cur:
            row = await cur.fetchone()
        return {"id": row[0], "title": row[1]} if row else None

    async def update(db, note_id, title):
        await db.execute("UPDATE notes SET title = ? WHERE id = ?", (title, note_id))
        await db.commit()
        return await fetch(db, note_id)

    app.cleanup_ctx.append(connect)
    return _note_routes(app, insert, fetch, update)


def candidate_app(dsn: str, copies=lambda title: 1) -> web.Application:
    """The PostgreSQL build; `copies(title)` is how many times it stores a new note."""
    app = web.Application()

    async def connect(app):
        app[DB] = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        yield
        await app[DB].close()

    async def insert(pool, title):
        try:  # the CHECK constraint rejects it after nextval(): one id burnt
            ids = [await pool.fetchval("INSERT INTO notes (title) VALUES ($1) RETURNING id", title)
                   for _ in range(copies(title))]
        except asyncpg.CheckViolationError:
            return None
        return ids[0]

    async def fetch(pool, note_id):
        row = await pool.fetchrow("SELECT id, title FROM notes WHERE id = $1", note_id)
        return dict(row) if row else None

    async def update(pool, note_id, title):
        await pool.execute("UPDATE notes SET title = $1 WHERE id = $2", title, note_id)
        return await fetch(pool, note_id)

    app.cleanup_ctx.append(connect)
    return _note_routes(app, insert, fetch, update)


@asynccontextmanager
async def notes_proxy(aiohttp_server, pg_dsn, tmp_path, copies=lambda title: 1):
    """A running proxy in front of both builds, row capture installed; yields
    (base url, the comparisons the verifier concluded, the runtime)."""
    sqlite_path = tmp_path / "notes.sqlite3"
    async with aiosqlite.connect(sqlite_path) as db:
        await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL)")
        await db.commit()
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, "
                       "title text NOT NULL CHECK (length(title) <= 20))")
    await conn.close()
    legacy = await aiohttp_server(legacy_app(str(sqlite_path)))
    candidate = await aiohttp_server(candidate_app(pg_dsn, copies))
    async with rows_proxy(str(legacy.make_url("")), sqlite_path, str(candidate.make_url("")),
                          pg_dsn, tmp_path,
                          [{"template": "/notes"}, {"template": "/notes/{id}"}]) as running:
        yield running


async def send(base, runtime, steps):
    async with aiohttp.ClientSession() as session:
        for method, path, body in steps:
            async with session.request(method, base + path, json=body) as resp:
                assert resp.status in (200, 201, 400)
    await settle(runtime, len(steps))


async def test_one_burnt_id_is_one_mismatch(aiohttp_server, pg_dsn, tmp_path):
    async with notes_proxy(aiohttp_server, pg_dsn, tmp_path) as (base, comparisons, runtime):
        steps = [("POST", "/notes", {"title": "first"}), ("POST", "/notes", {"title": "second"}),
                 ("POST", "/notes", {"title": "a title far too long to keep"}),
                 ("POST", "/notes", {"title": "third"}),       # legacy id 3, candidate id 4
                 ("GET", "/notes/3", None), ("PUT", "/notes/3", {"title": "third, edited"}),
                 ("GET", "/notes/3", None), ("POST", "/notes", {"title": "fourth"}),
                 ("GET", "/notes/4", None), ("GET", "/notes/1", None)]
        await send(base, runtime, steps)

    # in request order: a verdict with a key difference waits (shadow.writes.reconcile)
    verdicts = [(f"{c.exchange.method} {c.exchange.target}", c.verdict)
                for c in sorted(comparisons, key=lambda c: c.exchange.received_at)]
    assert [v for _, v in verdicts] == ["match", "match", "match", "mismatch", "match", "match",
                                        "match", "match", "match", "match"], verdicts
    assert runtime.rows.keymap.shadow_key("notes", (3,)) == (4,)
    assert runtime.rows.keymap.shadow_key("notes", (4,)) == (5,)


async def test_one_extra_row_is_one_difference_and_shifts_no_later_id(
        aiohttp_server, pg_dsn, tmp_path):
    def copies(title):
        return 2 if title == "twice" else 1

    async with notes_proxy(aiohttp_server, pg_dsn, tmp_path, copies) as (
            base, comparisons, runtime):
        steps = [("POST", "/notes", {"title": "first"}), ("POST", "/notes", {"title": "second"}),
                 ("POST", "/notes", {"title": "twice"}),   # legacy id 3; candidate ids 3 and 4
                 ("POST", "/notes", {"title": "third"}),   # legacy id 4, candidate id 5
                 ("GET", "/notes/4", None), ("PUT", "/notes/4", {"title": "third, edited"}),
                 ("GET", "/notes/4", None), ("POST", "/notes", {"title": "fourth"}),
                 ("POST", "/notes", {"title": "fifth"}), ("GET", "/notes/6", None),
                 ("GET", "/notes/3", None)]
        await send(base, runtime, steps)

    differences = [(c.exchange.target, d.kind, d.path) for c in comparisons for d in c.differences]
    assert differences == [("/notes", "row_extra", "notes[4]")], differences
    assert [c.verdict for c in comparisons].count("mismatch") == 1
    assert [runtime.rows.keymap.shadow_key("notes", (k,)) for k in (3, 4, 5, 6)] == [
        (3,), (5,), (6,), (7,)]
