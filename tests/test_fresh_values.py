"""Values drawn fresh per reply, learnt through a real proxy from the traffic alone: a
token in a read's reply and a random error id in the error reply of a write that writes an
audit row. No comparison rule is configured and nothing is sent twice; after the cold start
neither place makes a mismatch, while a real change in the same replies is still caught,
and so is a value that looks random but is the same for the same input."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import aiohttp
import aiosqlite
from aiohttp import web
from click.testing import CliRunner

from shadow.cli import main
from shadow.compare.fresh import ANY_ROUTE
from shadow.config import parse_config
from shadow.demo.runner import install_capture
from tests.support import HITS, admin_url, counting, proxy_url, running, sample_value, settle
from tests.writes.apps import rows_of, sqlite_databases

TOKEN = "fresh-values-admin-token"
DB = web.AppKey("db", aiosqlite.Connection)


def build(database: str, plan: str) -> web.Application:
    """GET /api/token: a fresh token and the plan (`plan` differs on the candidate: a real
    bug). POST /api/notes: an empty text is refused with a random error id, and the
    refusal is audited (a row written); otherwise the note is stored. GET /api/share/{id}:
    a code derived from the id, salted with `plan` (so wrong on the candidate: a value
    that looks random but is stable for the same input)."""
    app = web.Application()

    async def connect(app):
        app[DB] = await aiosqlite.connect(database.removeprefix("sqlite://"),
                                          isolation_level=None)
        yield
        await app[DB].close()

    async def token(request):
        return web.json_response({"token": secrets.token_urlsafe(18), "plan": plan})

    async def note(request):
        text = (await request.json()).get("text", "")
        if not text:
            await app[DB].execute("INSERT INTO audit (what) VALUES ('note refused')")
            return web.json_response({"error": "text required",
                                      "error_id": secrets.token_hex(6)}, status=422)
        cursor = await app[DB].execute("INSERT INTO items (name) VALUES (?)", (text,))
        return web.json_response({"id": cursor.lastrowid}, status=201)

    app.cleanup_ctx.append(connect)
    app.router.add_get("/api/token", token)
    async def share(request):
        code = hashlib.sha256(f"{plan}:{request.match_info['id']}".encode()).hexdigest()
        return web.json_response({"code": code[:20]})

    app.router.add_post("/api/notes", note)
    app.router.add_get("/api/share/{id}", share)
    return counting(app)


async def test_fresh_values_are_learnt_without_a_rule_or_a_second_request(
        aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    databases = await sqlite_databases(tmp_path)
    legacy = await aiohttp_server(build(databases[0], "pro"))
    candidate = await aiohttp_server(build(databases[1], "free"))
    config = parse_config({
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "mode": "shadow",
        "backends": {"legacy": {"url": str(legacy.make_url("")), "database": databases[0]},
                     "candidate": {"url": str(candidate.make_url("")),
                                   "database": databases[1]}},
        "routes": [{"template": "/api/token"}, {"template": "/api/notes"},
                   {"template": "/api/share/{id}"}],
        "store": {"path": str(tmp_path / "state.db")},
        "noise": {"share": 0.0, "min_fresh": 6},  # no A/A probe: nothing is sent twice
    })
    await install_capture(config)
    sent = 0

    async def traffic(http, n: int) -> None:
        nonlocal sent
        for _ in range(n):
            async with http.get(proxy_url(runtime, "/api/token")) as reply:
                assert reply.status == 200
            async with http.post(proxy_url(runtime, "/api/notes"), json={"text": ""}) as reply:
                assert reply.status == 422
            async with http.get(proxy_url(runtime, f"/api/share/{sent // 3 % 3}")) as reply:
                assert reply.status == 200
            sent += 3
        await settle(runtime, sent)

    async with running(config) as runtime, aiohttp.ClientSession() as http:
        await traffic(http, 8)  # the cold start: learning from these
        await runtime.store.flush()
        before = {s["path"]: s["count"] for s in await runtime.store.signatures()}
        await traffic(http, 12)
        await runtime.store.flush()
        after = {s["path"]: s["count"] for s in await runtime.store.signatures()}
        env = {"SHADOW_ADMIN_URL": admin_url(runtime), "SHADOW_ADMIN_TOKEN": TOKEN}
        listed = await asyncio.to_thread(CliRunner().invoke, main, ["noise", "list"], env=env)
        rejected = await asyncio.to_thread(
            CliRunner().invoke, main,
            ["noise", "reject", ANY_ROUTE, "$.token", "--reason", "tokens must match"], env=env)
        await traffic(http, 2)
        await runtime.store.flush()
        last = {s["path"]: s["count"] for s in await runtime.store.signatures()}
        noise = sample_value(runtime, "shadow_noise_total", route="/api/notes", method="POST")
        learnt = {r["route"]: r for r in runtime.noise.listing()}
        saved = repr(runtime.noise.saved())

    # the real change is caught in every reply, the fresh values only in the cold start
    assert after["$.plan"] == before["$.plan"] + 12
    assert after["$.code"] == before["$.code"] + 12 == 20  # stable per id: never learnt
    assert after["$.token"] == before["$.token"] <= 6
    assert after["$.error_id"] == before["$.error_id"] <= 6
    assert noise >= 12
    places = {p["path"]: p for p in learnt[ANY_ROUTE]["places"]}
    assert places["$.error_id"]["how"] == "fresh" and places["$.error_id"]["hiding"]
    assert places["$.error_id"]["routes"] == ["POST /api/notes"]
    assert places["$.error_id"]["classes"] == {"4xx": 22}
    assert places["$.token"]["shape"] == "24 base64url characters"
    assert "$.plan" not in places
    assert places["$.code"]["refused"] == "a value was seen twice"
    # nothing was sent twice: the refused write was audited once per client request
    assert legacy.app[HITS] == {"/api/token": 22, "/api/notes": 22,
                                **{f"/api/share/{i}": n for i, n in enumerate((8, 7, 7))}}
    assert len(await rows_of(databases[0], "audit")) == 22
    assert listed.exit_code == 0, listed.output
    assert "learnt    $.error_id" in listed.output and "none seen twice" in listed.output
    assert rejected.exit_code == 0, rejected.output
    assert last["$.token"] == after["$.token"] + 2 and last["$.error_id"] == after["$.error_id"]
    assert "note refused" not in saved
