"""The pair behaves like a real app: a connection per request, two SQLite files, audit
rows on reads and errors, a slow dependency, CSRF, random error ids, a DML-only role."""

from __future__ import annotations

import sqlite3
import statistics
import time

import aiohttp
import asyncpg
import pytest

from shadow.demo.auth import CSRF_HEADER
from shadow.demo.candidate import make_candidate_app
from shadow.demo.coach import CALLS, make_coach_app
from shadow.demo.legacy import make_legacy_app
from shadow.demo.legacy_files import achievements_path
from shadow.demo.request_context import DATABASE
from shadow.demo.roles import app_role
from shadow.rows.model import RowRules
from shadow.rows.postgres import PostgresCapture

ALICE = {"username": "alice", "password": "alice-demo-pass"}


async def _log_in(session: aiohttp.ClientSession, who: dict = ALICE) -> None:
    async with session.get("/api/csrf") as reply:
        token = (await reply.json())["csrf_token"]
    async with session.post("/api/login", json=who, headers={CSRF_HEADER: token}) as reply:
        assert reply.status == 200, await reply.text()


def _session(server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=server.make_url("/"),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_the_legacy_build_opens_a_connection_per_request(seeded, aiohttp_server):
    db_path, _ = seeded
    app = make_legacy_app(db_path)
    server = await aiohttp_server(app)
    async with _session(server) as session:
        await _log_in(session)
        database = app[DATABASE]
        before = dict(database.opened)
        for _ in range(12):
            async with session.get("/api/me") as reply:
                assert reply.status == 200
        assert database.opened["main"] - before["main"] == 12
        assert database.opened.get("achievements", 0) == before.get("achievements", 0)
        for _ in range(3):
            async with session.get("/api/achievements") as reply:
                assert reply.status == 200
                assert [b["badge"] for b in (await reply.json())["achievements"]][:1] == [
                    "points_100"]
    assert database.opened["achievements"] - before.get("achievements", 0) == 3
    assert database.opened == database.closed, "every connection is closed with its request"
    with sqlite3.connect(achievements_path(db_path)) as badges:
        assert badges.execute("SELECT count(*) FROM achievements").fetchone()[0] >= 4


async def test_errors_and_audited_reads_write_audit_rows(seeded, aiohttp_server):
    db_path, _ = seeded
    server = await aiohttp_server(make_legacy_app(db_path))
    async with _session(server) as session:
        async with session.get("/api/inbox") as reply:  # no session: 401
            first = await reply.json()
        async with session.post("/api/login", json=ALICE) as reply:  # no CSRF token: 403
            assert reply.status == 403
        async with session.get("/api/inbox") as reply:
            second = await reply.json()
        await _log_in(session)
        async with session.get("/api/journal/1") as reply:
            assert reply.status == 200
        async with session.get("/api/csrf") as one, session.get("/api/csrf") as two:
            assert (await one.json())["csrf_token"] != (await two.json())["csrf_token"]
    assert first["error"] == second["error"] and first["error_id"] != second["error_id"]
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT user_id, action, route, status FROM audit_log "
                          "ORDER BY id").fetchall()
    assert rows == [(None, "error", "/api/inbox", 401), (None, "error", "/api/login", 403),
                    (None, "error", "/api/inbox", 401), (2, "read_entry", "/api/journal/{id}",
                                                         200)]


async def test_the_slow_route_waits_on_the_coach_before_writing(seeded, aiohttp_server):
    """Slow relative to a fast route of the same build in the same run."""
    db_path, _ = seeded
    coach_app = make_coach_app((0.4, 0.4))
    coach = await aiohttp_server(coach_app)
    server = await aiohttp_server(make_legacy_app(db_path, coach_url=str(coach.make_url(""))))
    slow, fast = [], []
    async with _session(server) as session:
        await _log_in(session)
        for _ in range(3):
            started = time.perf_counter()
            async with session.post("/api/reflections", json={"entry_id": 1}) as reply:
                assert reply.status == 201
                body = await reply.json()
            slow.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with session.get("/api/reflections") as reply:
                assert reply.status == 200
                listed = (await reply.json())["reflections"]
            fast.append(time.perf_counter() - started)
    assert len(coach_app[CALLS]) == 3
    assert listed[0] == body and 0.5 <= body["confidence"] < 1
    assert statistics.median(slow) > 3 * statistics.median(fast), (slow, fast)


async def test_the_slow_route_answers_503_without_its_coach(seeded, aiohttp_server):
    db_path, _ = seeded
    server = await aiohttp_server(make_legacy_app(db_path))
    async with _session(server) as session:
        await _log_in(session)
        async with session.post("/api/reflections", json={"entry_id": 1}) as reply:
            assert reply.status == 503 and "error_id" in await reply.json()


async def _write_as_app_role(seeded, aiohttp_server, *, future: bool) -> list[int]:
    """Install capture as the schema owner, then register, log in and write a mood as
    the DML-only role; the statuses of the writes, and checks on the role's rights."""
    _, owner_dsn = seeded
    async with app_role(owner_dsn, future=future) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE sneaky (id int)")
        finally:
            await conn.close()
        capture = PostgresCapture(owner_dsn, rules=RowRules())
        await capture.open()
        try:
            await capture.install()
            server = await aiohttp_server(make_candidate_app(dsn, "none"))
            statuses = []
            async with _session(server) as session:
                fresh = {"username": "least_priv", "password": "least-priv-pass"}
                async with session.post("/api/register", json=fresh) as reply:
                    statuses.append(reply.status)
                await _log_in(session, fresh)
                async with session.post("/api/moods", json={"score": 6}) as reply:
                    statuses.append(reply.status)
            await server.close()
            changes = await capture.drain()
        finally:
            await capture.close()
    assert {change.table for change in changes} >= {"users", "moods", "points"}
    return statuses


async def test_the_dml_only_role_writes_through_capture(seeded, aiohttp_server):
    """Grants that cover the owner's future tables (ALTER DEFAULT PRIVILEGES) also cover
    the change log that `shadow rows install` creates as the owner."""
    assert await _write_as_app_role(seeded, aiohttp_server, future=True) == [201, 201]


async def test_a_role_granted_only_the_apps_tables_writes_through_capture(
        seeded, aiohttp_server):
    """No grant on anything capture creates: installing it must not break the role."""
    assert await _write_as_app_role(seeded, aiohttp_server, future=False) == [201, 201]
