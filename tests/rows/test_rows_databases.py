"""Several databases per backend: two SQLite files on the legacy side, one PostgreSQL
database on the candidate side, a table moved from one to the other and a table renamed.

Tables are matched by name whatever database holds them; a faithful pair of builds makes
no mismatch, a candidate that loses a write is a `row_missing` in the table of either
legacy database; install and status list each database; the config names every problem
with its location."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import asynccontextmanager

import aiohttp
import aiosqlite
import asyncpg
import pytest
from aiohttp import web
from click.testing import CliRunner

from shadow.cli import main
from shadow.config import ConfigError, parse_config, row_rules
from shadow.demo.runner import install_capture
from shadow.rows.capture import CaptureError
from shadow.rows.databases import DatabasesCapture
from shadow.rows.live import backend_capture, open_capture
from shadow.rows.model import RowRules
from tests.rows.apps import POOL, with_pool
from tests.support import VIEWER, admin_url, config_data, running, settle

LEGACY_MAIN = ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
               "CREATE TABLE toys (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
LEGACY_PET = "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, hunger INTEGER);"
CANDIDATE = ("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);"
             "CREATE TABLE pet_toys (id serial PRIMARY KEY, name text NOT NULL);"
             "CREATE TABLE pets (id serial PRIMARY KEY, name text NOT NULL, hunger integer);")
#: Where each kind of thing lives on each side: the pets moved from their own SQLite
#: file into the main PostgreSQL database, and `toys` became `pet_toys`.
LEGACY_TABLES = {"users": "main", "toys": "main", "pets": "pet"}
CANDIDATE_TABLES = {"users": "users", "toys": "pet_toys", "pets": "pets"}


async def make_databases(tmp_path, pg_dsn) -> dict[str, str]:
    paths = {"main": tmp_path / "app.db", "pet": tmp_path / "pet_game.db"}
    for name, schema in (("main", LEGACY_MAIN), ("pet", LEGACY_PET)):
        with sqlite3.connect(paths[name]) as conn:
            conn.executescript(schema)
        conn.close()
    pg = await asyncpg.connect(pg_dsn)
    try:
        await pg.execute(CANDIDATE)
    finally:
        await pg.close()
    return {name: str(path) for name, path in paths.items()}


def legacy_app(paths: dict[str, str]) -> web.Application:
    """The SQLite build: one connection per request, to the file that holds the table."""

    async def create(request):
        kind = request.match_info["kind"]
        data = await request.json()
        table = kind
        async with aiosqlite.connect(paths[LEGACY_TABLES[kind]]) as db:
            if kind == "pets":
                cur = await db.execute("INSERT INTO pets (name, hunger) VALUES (?, ?)",
                                       (data["name"], data.get("hunger", 0)))
            else:
                cur = await db.execute(f"INSERT INTO {table} (name) VALUES (?)", (data["name"],))
            await db.commit()
        return web.json_response({"id": cur.lastrowid, "name": data["name"]}, status=201)

    app = web.Application()
    app.router.add_post("/{kind}", create)
    return app


def candidate_app(dsn: str, loses: str = "") -> web.Application:
    """The PostgreSQL build; it answers like the legacy one but drops a write whose name
    is `loses` (a lost write)."""

    async def create(request):
        kind = request.match_info["kind"]
        data = await request.json()
        table = CANDIDATE_TABLES[kind]
        pool = request.app[POOL]
        if data["name"] == loses:
            new_id = await pool.fetchval(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
        elif kind == "pets":
            new_id = await pool.fetchval("INSERT INTO pets (name, hunger) VALUES ($1, $2) "
                                         "RETURNING id", data["name"], data.get("hunger", 0))
        else:
            new_id = await pool.fetchval(f"INSERT INTO {table} (name) VALUES ($1) RETURNING id",
                                         data["name"])
        return web.json_response({"id": new_id, "name": data["name"]}, status=201)

    app = web.Application()
    app.router.add_post("/{kind}", create)
    return with_pool(app, dsn)


def two_database_config(tmp_path, paths, pg_dsn, legacy_url="http://127.0.0.1:5101",
                        candidate_url="http://127.0.0.1:5102", sqlite_capture="triggers"):
    return parse_config(config_data(
        tmp_path, legacy_url, candidate_url,
        backends={"legacy": {"url": legacy_url,
                             "databases": {db: f"sqlite:///{p}" for db, p in paths.items()}},
                  "candidate": {"url": candidate_url, "database": pg_dsn}},
        routes=[{"template": "/{kind}", "writes": True}],
        rows={"renamed": {"toys": "pet_toys"}, "sqlite_capture": sqlite_capture}))


@asynccontextmanager
async def two_database_proxy(aiohttp_server, pg_dsn, tmp_path, loses="", method="triggers"):
    paths = await make_databases(tmp_path, pg_dsn)
    legacy = await aiohttp_server(legacy_app(paths))
    candidate = await aiohttp_server(candidate_app(pg_dsn, loses))
    config = two_database_config(tmp_path, paths, pg_dsn, str(legacy.make_url("")),
                                 str(candidate.make_url("")), sqlite_capture=method)
    await install_capture(config)
    comparisons: list = []
    async with running(config) as runtime:
        runtime.verifier.listeners.append(comparisons.append)
        yield f"http://127.0.0.1:{runtime.proxy_port}", comparisons, runtime


async def post_all(base, runtime, bodies):
    async with aiohttp.ClientSession() as session:
        for kind, name in bodies:
            async with session.post(f"{base}/{kind}", json={"name": name, "hunger": 3}) as resp:
                assert resp.status == 201
    await settle(runtime, len(bodies))


WRITES = [("users", "ada"), ("pets", "rex"), ("toys", "ball"), ("pets", "tom"),
          ("users", "bob"), ("toys", "rope")]


@pytest.mark.parametrize("method", ["triggers", "wal"])
async def test_a_faithful_pair_over_three_databases_makes_no_mismatch(
        aiohttp_server, pg_dsn, tmp_path, method):
    async with two_database_proxy(aiohttp_server, pg_dsn, tmp_path, method=method) as (
            base, comparisons, runtime):
        await post_all(base, runtime, WRITES)
        capture = runtime.rows.captures["legacy"]
        assert isinstance(capture, DatabasesCapture)
        assert capture.where() == {"toys": "main", "users": "main", "pets": "pet"}
        if method == "wal":  # the proxy reads each database's log position per window
            assert set(capture.positions()) == {p.path for p in capture.parts.values()}
        else:                # triggers give none: no request reads positions for nothing
            assert capture.positions is None
        async with aiohttp.ClientSession() as session:
            async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as resp:
                status = await resp.json()
    verdicts = [(c.exchange.target, c.verdict, c.differences) for c in comparisons]
    assert [v for _, v, _ in verdicts] == ["match"] * len(WRITES), verdicts
    assert all(c.shadow is not None for c in comparisons)
    legacy = status["rows"]["capture"]["legacy"]
    assert set(legacy["databases"]) == {"main", "pet"}
    assert legacy["databases"]["pet"]["captured"] == ["pets"]
    assert "databases" not in status["rows"]["capture"]["candidate"]


@pytest.mark.parametrize("method", ["triggers", "wal"])
async def test_a_lost_write_is_row_missing_in_either_legacy_database(
        aiohttp_server, pg_dsn, tmp_path, method):
    async with two_database_proxy(aiohttp_server, pg_dsn, tmp_path, loses="lost",
                                  method=method) as (base, comparisons, runtime):
        await post_all(base, runtime, [("users", "ada"), ("pets", "lost"), ("pets", "rex"),
                                       ("users", "lost"), ("toys", "lost"), ("toys", "ball")])
    found = [(c.exchange.target, d.kind, d.path) for c in comparisons for d in c.differences
             if d.kind.startswith("row_")]
    assert found == [("/pets", "row_missing", "pets[1]"), ("/users", "row_missing", "users[2]"),
                     ("/toys", "row_missing", "toys[1]")], found
    assert [c.verdict for c in comparisons][:2] == ["match", "mismatch"]


async def test_capture_names_tables_by_their_compared_name(pg_dsn, tmp_path):
    paths = await make_databases(tmp_path, pg_dsn)
    config = two_database_config(tmp_path, paths, pg_dsn)
    legacy, candidate = backend_capture(config, "legacy"), backend_capture(config, "candidate")
    async with legacy, candidate:
        await legacy.install()
        status = await candidate.install()
        assert sorted(candidate.tables) == ["pets", "toys", "users"]
        assert candidate.tables["toys"].name == "toys" and "toys" in status.captured
        pg = await asyncpg.connect(pg_dsn)
        try:
            await pg.execute("INSERT INTO pet_toys (name) VALUES ('ball')")
        finally:
            await pg.close()
        with sqlite3.connect(paths["pet"]) as conn:
            conn.execute("INSERT INTO pets (name, hunger) VALUES ('rex', 1)")
        conn.close()
        with sqlite3.connect(paths["main"]) as conn:
            conn.execute("INSERT INTO toys (name) VALUES ('ball')")
        conn.close()
        drained = await legacy.drain()
        assert sorted((c.table, c.op, c.key) for c in drained) == [
            ("pets", "insert", (1,)), ("toys", "insert", (1,))]
        assert [(c.table, c.after) for c in await candidate.drain()] == [
            ("toys", {"id": 1, "name": "ball"})]
        assert set(legacy.statuses) == {"main", "pet"}
        assert legacy.statuses["pet"].captured == ("pets",)


async def test_one_table_in_two_databases_of_a_backend_is_refused(tmp_path):
    paths = {}
    for db in ("main", "pet"):
        paths[db] = f"sqlite:///{tmp_path / (db + '.db')}"
        with sqlite3.connect(tmp_path / f"{db}.db") as conn:
            conn.execute("CREATE TABLE pets (id INTEGER PRIMARY KEY)")
        conn.close()
    capture = open_capture(paths, RowRules())
    async with capture:
        with pytest.raises(CaptureError, match="'pets' is in database 'main' and in database 'pet'"):
            await capture.introspect()
    excluded = open_capture(paths, RowRules.build(exclude=["pets"]))
    async with excluded:
        assert list(await excluded.introspect()) == ["pets"]


async def test_install_and_status_list_each_database(pg_dsn, tmp_path):
    paths = await make_databases(tmp_path, pg_dsn)
    config = tmp_path / "shadow.toml"
    config.write_text(
        '[backends.legacy]\nurl = "http://127.0.0.1:5101"\n'
        f'databases = {{ main = "sqlite:///{paths["main"]}", pet = "sqlite:///{paths["pet"]}" }}\n'
        f'[backends.candidate]\nurl = "http://127.0.0.1:5102"\ndatabase = "{pg_dsn}"\n'
        '[rows]\nrenamed = { toys = "pet_toys" }\n')

    async def shadow(*args):
        return await asyncio.to_thread(CliRunner().invoke, main, [*args, "-c", str(config)])

    installed = await shadow("rows", "install")
    status = await shadow("rows", "status")
    assert installed.exit_code == 0 and status.exit_code == 0, status.output
    for output in (installed.output, status.output):
        assert "database main: installed; captured: toys, users" in output
        assert "database pet: installed; captured: pets" in output
        assert ("compared (both sides): pets (legacy: pet), toys (legacy: main), "
                "users (legacy: main)") in output
    assert (await shadow("rows", "uninstall")).output.count("removed") == 2
    with sqlite3.connect(paths["pet"]) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '_shadow%'"
                            ).fetchone() == (0,)
    conn.close()


def test_database_settings_are_checked_with_their_location():
    good = parse_config({"backends": {
        "legacy": {"url": "http://127.0.0.1:1",
                   "databases": {"main": "sqlite:////srv/a.db", "pet": "sqlite:////srv/p.db"}},
        "candidate": {"url": "http://127.0.0.1:2", "database": "postgresql://db/app"}},
        "rows": {"renamed": {"toys": "pet_toys"}}})
    assert good.rows_enabled
    assert good.backends["legacy"].database_map == {"main": "sqlite:////srv/a.db",
                                                    "pet": "sqlite:////srv/p.db"}
    assert good.backends["candidate"].database_map == {"main": "postgresql://db/app"}
    with pytest.raises(ConfigError) as raised:
        parse_config({"backends": {
            "legacy": {"url": "http://127.0.0.1:1", "database": "sqlite:////srv/a.db",
                       "databases": {"main": "sqlite:////srv/a.db", "pet": "pet.db",
                                     "bad name": "sqlite:////srv/b.db"}},
            "candidate": {"url": "http://127.0.0.1:2",
                          "databases": {"main": "postgresql://db/app",
                                        "pet": "sqlite:////srv/p.db"}}},
            "rows": {"renamed": {"toys": "pet_toys", "games": "PET_TOYS"}}})
    message = str(raised.value)
    assert "backends.legacy.databases: set together with backends.legacy.database" in message
    assert "backends.legacy.databases.pet: " in message and "sqlite:///ABSOLUTE/PATH" in message
    assert "backends.legacy.databases.bad name" in message
    assert ("backends.candidate.databases: " in message
            and "all databases of one backend must be of one kind" in message)
    assert "rows.renamed: " in message and "'PET_TOYS' is already the twin of 'toys'" in message
    assert row_rules(good).covers("toys")
