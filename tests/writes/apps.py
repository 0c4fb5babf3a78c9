"""A small app over a real database for the write-path tests, in two builds: SQLite
(aiosqlite) and PostgreSQL (asyncpg). Each request may be held open by the test.

    POST /items      {"name", "hold"?: event name}  inserts one row, answers {"id", "name"}
    GET  /items/{id}                                 reads one row; writes an audit row if
                                                     the build was made with `audit_items`
    GET  /feed                                       counts rows; writes an audit row if
                                                     the build was made with `audit=True`
    GET  /audits                                     counts audit rows (a summary)
    GET  /list                                       {"items": [{"name"}]}, newest id first
    GET  /big                                        a reply of `BIG` bytes (no rows)
    POST /upload                                     reads the whole body, inserts a row

`gates` (name -> asyncio.Event) hold a POST /items whose body names one until the test
sets it; `lost` names whose insert this build never commits (a lost write); `inserted`
(name -> asyncio.Event, e.g. a defaultdict) is told when the insert of a name is done;
`delay` seconds are spent before each POST /items and GET /feed does its work (a slow port).
`listing` is how GET /list is written: `ordered` (ORDER BY id DESC), `unordered` (the
`ORDER BY` forgotten: rows in the table's own order), `ids` (ordered, each element with
its `id`) or `wrong_ids` (as `ids`, but each element shows the id of the row after it).
"""

from __future__ import annotations

import asyncio

import aiosqlite
import asyncpg
from aiohttp import web

from shadow.config import parse_config
from shadow.demo.runner import install_capture

DB = web.AppKey("db", object)
BIG = 8 << 20
SCHEMA_SQLITE = ("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);"
                 "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)")
SCHEMA_PG = ("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);"
             "CREATE TABLE audit (id serial PRIMARY KEY, what text)")


class Sql:
    """The two statements the app runs, on either database."""

    def __init__(self, db, postgres: bool) -> None:
        self.db, self.postgres = db, postgres
        self.lock = asyncio.Lock()  # one SQLite connection: one transaction at a time

    async def insert(self, table: str, column: str, value: str, commit: bool = True) -> int:
        if self.postgres:
            async with self.db.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                new = await conn.fetchval(
                    f"INSERT INTO {table} ({column}) VALUES ($1) RETURNING id", value)
                await (tx.commit() if commit else tx.rollback())
                return new
        async with self.lock:
            await self.db.execute("BEGIN")
            cursor = await self.db.execute(f"INSERT INTO {table} ({column}) VALUES (?)", (value,))
            await self.db.execute("COMMIT" if commit else "ROLLBACK")
            return cursor.lastrowid

    async def one(self, item: int):
        if self.postgres:
            row = await self.db.fetchrow("SELECT id, name FROM items WHERE id = $1", item)
        else:
            async with self.db.execute("SELECT id, name FROM items WHERE id = ?", (item,)) as c:
                row = await c.fetchone()
        return None if row is None else {"id": row[0], "name": row[1]}

    async def names(self, ordered: bool) -> list[tuple[int, str]]:
        order = " ORDER BY id DESC" if ordered else ""
        if self.postgres:
            return [tuple(r) for r in await self.db.fetch(f"SELECT id, name FROM items{order}")]
        async with self.db.execute(f"SELECT id, name FROM items{order}") as c:
            return [tuple(r) for r in await c.fetchall()]

    async def count(self, table: str = "items") -> int:
        if self.postgres:
            return await self.db.fetchval(f"SELECT count(*) FROM {table}")
        async with self.db.execute(f"SELECT count(*) FROM {table}") as c:
            return (await c.fetchone())[0]


def items_app(database: str, *, gates: dict[str, asyncio.Event] | None = None,
              lost: frozenset[str] = frozenset(), audit: bool = False,
              inserted: dict[str, asyncio.Event] | None = None,
              delay: float = 0.0, listing: str = "ordered",
              audit_items: bool = False) -> web.Application:
    gates = gates if gates is not None else {}
    postgres = not database.startswith("sqlite:///")
    app = web.Application(client_max_size=64 << 20)

    async def connect(app):
        if postgres:
            db = await asyncpg.create_pool(database, min_size=1, max_size=8)
        else:
            db = await aiosqlite.connect(database.removeprefix("sqlite://"), isolation_level=None)
        app[DB] = Sql(db, postgres)
        yield
        await db.close()

    async def create(request):
        data = await request.json()
        gate = gates.get(data.get("hold", ""))
        if gate is not None:
            await gate.wait()
        if delay:
            await asyncio.sleep(delay)
        name = data["name"]
        new = await app[DB].insert("items", "name", name, commit=name not in lost)
        if inserted is not None:
            inserted[name].set()
        return web.json_response({"id": new, "name": name}, status=201)

    async def read(request):
        if audit_items:
            await app[DB].insert("audit", "what", "item read")
        row = await app[DB].one(int(request.match_info["id"]))
        return web.json_response(row) if row else web.json_response({"error": "no"}, status=404)

    async def feed(request):
        if delay:
            await asyncio.sleep(delay)
        if audit:
            await app[DB].insert("audit", "what", "feed read")
        return web.json_response({"items": await app[DB].count()})

    async def audits(request):
        return web.json_response({"audits": await app[DB].count("audit")})

    async def names(request):
        rows = await app[DB].names(ordered=listing != "unordered")
        if listing == "wrong_ids":
            rows = [(i - 1, n) for i, n in rows]
        return web.json_response({"items": [{"id": i, "name": n} if listing.endswith("ids")
                                            else {"name": n} for i, n in rows]})

    async def big(request):
        return web.Response(body=b"x" * BIG, content_type="application/octet-stream")

    async def upload(request):
        size = len(await request.read())
        new = await app[DB].insert("items", "name", f"upload {size}")
        return web.json_response({"id": new, "size": size}, status=201)

    app.cleanup_ctx.append(connect)
    app.router.add_post("/items", create)
    app.router.add_get("/items/{id}", read)
    app.router.add_get("/feed", feed)
    app.router.add_get("/audits", audits)
    app.router.add_get("/list", names)
    app.router.add_get("/big", big)
    app.router.add_post("/upload", upload)
    return app


async def prepare(database: str) -> None:
    """Create the schema in an empty database."""
    if database.startswith("sqlite:///"):
        async with aiosqlite.connect(database.removeprefix("sqlite://")) as db:
            await db.executescript(SCHEMA_SQLITE)
            await db.commit()
    else:
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(SCHEMA_PG)
        finally:
            await conn.close()


async def sqlite_databases(tmp_path) -> list[str]:
    """Two empty SQLite databases (legacy, candidate) with the schema, as URLs."""
    databases = []
    for name in ("legacy", "candidate"):
        path = tmp_path / f"{name}.db"
        path.touch()
        databases.append(f"sqlite:///{path}")
        await prepare(databases[-1])
    return databases


def row_config(tmp_path, legacy_url: str, candidate_url: str, legacy_db: str,
               candidate_db: str, **extra):
    data = {
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "mode": "shadow",
        "backends": {"legacy": {"url": legacy_url, "database": legacy_db},
                     "candidate": {"url": candidate_url, "database": candidate_db}},
        "routes": [{"template": "/items"}, {"template": "/items/{id}"}, {"template": "/feed"},
                   {"template": "/audits"}, {"template": "/big"}, {"template": "/upload"},
                   {"template": "/list"}],
        "store": {"path": str(tmp_path / "state.db")},
    }
    data.update(extra)
    return parse_config(data)


async def build_pair(aiohttp_server, tmp_path, candidate_db: str | None = None, *,
                     gates=None, lost=frozenset(), audit=False, sides=None, **extra):
    """Both builds on fresh databases (legacy SQLite; candidate SQLite, or PostgreSQL at
    `candidate_db`), capture installed; returns (config, legacy_db, candidate_db). `gates`
    hold writes on both builds, `lost` and `audit` change the candidate only; `sides`
    ({"legacy": {...}, "candidate": {...}}) gives one build its own `gates` and
    `inserted` instead."""
    legacy_db = f"sqlite:///{tmp_path / 'legacy.db'}"
    candidate_db = candidate_db or f"sqlite:///{tmp_path / 'candidate.db'}"
    for db in (legacy_db, candidate_db):
        if db.startswith("sqlite:///"):
            open(db.removeprefix("sqlite://"), "a").close()
        await prepare(db)
    sides = sides or {}
    legacy = await aiohttp_server(items_app(legacy_db, **{"gates": gates,
                                                          **sides.get("legacy", {})}))
    candidate = await aiohttp_server(items_app(
        candidate_db, lost=lost, audit=audit, **{"gates": gates, **sides.get("candidate", {})}))
    config = row_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                        legacy_db, candidate_db, **extra)
    await install_capture(config)
    return config, legacy_db, candidate_db


async def rows_of(database: str, table: str = "items") -> list[tuple]:
    """Every row of `table`, in key order."""
    if database.startswith("sqlite:///"):
        async with aiosqlite.connect(database.removeprefix("sqlite://")) as db:
            async with db.execute(f"SELECT * FROM {table} ORDER BY id") as c:
                return [tuple(r) for r in await c.fetchall()]
    conn = await asyncpg.connect(database)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        await conn.close()
