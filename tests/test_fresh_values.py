"""Values drawn fresh per reply, learnt through a real proxy from the traffic alone: a
token in a read's reply and a random error id in the error reply of a write that writes an
audit row. No comparison rule is configured and nothing is sent twice. While a place is
still being learnt, a comparison that differs only there is held, not recorded: so a
faithful pair shows no mismatch from its very first exchange, while a real change in the
same replies is still caught, and so is a value that looks random but is the same for the
same input (every one of its mismatches recorded once its repeat refuses the place)."""

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
from shadow.store import Store
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


async def _pair(aiohttp_server, tmp_path, plans: tuple[str, str], **noise):
    """The proxy's config for a legacy and a candidate build of `build` (with `plans`),
    the legacy server and both databases. No A/A probe: nothing is sent twice."""
    databases = await sqlite_databases(tmp_path)
    legacy = await aiohttp_server(build(databases[0], plans[0]))
    candidate = await aiohttp_server(build(databases[1], plans[1]))
    config = parse_config({
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "mode": "shadow",
        "backends": {"legacy": {"url": str(legacy.make_url("")), "database": databases[0]},
                     "candidate": {"url": str(candidate.make_url("")),
                                   "database": databases[1]}},
        "routes": [{"template": "/api/token"}, {"template": "/api/notes"},
                   {"template": "/api/share/{id}"}],
        "store": {"path": str(tmp_path / "state.db")},
        "noise": {"share": 0.0, **noise},
    })
    await install_capture(config)
    return config, legacy, databases


async def one_round(http: aiohttp.ClientSession, runtime, share: int) -> None:
    """A token, a refused note (its error id) and the share code of `share`."""
    async with http.get(proxy_url(runtime, "/api/token")) as reply:
        assert reply.status == 200
    async with http.post(proxy_url(runtime, "/api/notes"), json={"text": ""}) as reply:
        assert reply.status == 422
    async with http.get(proxy_url(runtime, f"/api/share/{share}")) as reply:
        assert reply.status == 200


def _verdicts(runtime) -> dict[str, float]:
    return {v: n for v in ("match", "mismatch") if (n := sum(
        sample_value(runtime, "shadow_requests_total", route=r, method=m, verdict=v)
        for m, r in (("GET", "/api/token"), ("POST", "/api/notes"),
                     ("GET", "/api/share/{id}"))))}


async def test_a_faithful_pair_shows_no_mismatch_from_its_first_exchange(
        aiohttp_server, tmp_path):
    """No rule, nothing sent twice, and not one mismatch, not even while the token and
    the error id are still being learnt: those comparisons are held, then recorded as
    matches whose differences are noise, once their places are learnt."""
    config, _, _ = await _pair(aiohttp_server, tmp_path, ("pro", "pro"), min_fresh=5)
    held_during: list[float] = []
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        for n in range(12):
            await one_round(http, runtime, n % 3)
            await settle(runtime, 3 * (n + 1))
            held_during.append(sample_value(runtime, "shadow_verdicts_held"))
        await runtime.store.flush()
        signatures = await runtime.store.signatures()
        verdicts = _verdicts(runtime)
        noise = sum(sample_value(runtime, "shadow_noise_total", route=r, method=m)
                    for m, r in (("GET", "/api/token"), ("POST", "/api/notes")))
        places = {p["path"]: p for p in runtime.noise.fresh.listing()}
        held_after = sample_value(runtime, "shadow_verdicts_held")
        learnt = sample_value(runtime, "shadow_held_settled_total", why="learnt")
    assert signatures == [] and verdicts == {"match": 36}
    assert max(held_during) > 0 and held_after == 0, held_during  # the gauge showed them
    assert learnt >= 2  # held comparisons of both places, settled when learnt
    assert noise == 24  # every token and error id difference: hidden, counted
    assert places["$.token"]["hidden"] == 12
    assert places["$.error_id"]["hidden"] == 12


async def test_what_is_held_when_the_proxy_stops_is_recorded_as_it_stands(
        aiohttp_server, tmp_path, monkeypatch):
    """A place that never gets its evidence: its comparisons are held, and recorded as
    the mismatches they are when the proxy stops; none is lost."""
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    config, _, _ = await _pair(aiohttp_server, tmp_path, ("pro", "pro"), min_fresh=50)
    heard: list = []
    tokens: list[str] = []
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        runtime.verifier.listeners.append(heard.append)
        for _ in range(3):
            async with http.get(proxy_url(runtime, "/api/token")) as reply:
                assert reply.status == 200
                tokens.append((await reply.json())["token"])
        await settle(runtime, 3)
        held = sample_value(runtime, "shadow_verdicts_held")
        status = await (await http.get(admin_url(runtime, "/api/status"), headers={
            "Authorization": f"Bearer {TOKEN}"})).json()
        assert _verdicts(runtime) == {}
    assert held == 3 and status["counts"]["held"] == 3
    assert _verdicts(runtime) == {"mismatch": 3}
    assert sample_value(runtime, "shadow_held_settled_total", why="stopped") == 3
    # the listeners heard of each once, late; what was held kept no body and no token
    assert len(heard) == 3 and all(c.held > 0 for c in heard)
    assert all(c.primary.reply.body == b"" == c.exchange.body for c in heard)
    assert not [t for t in tokens if t in repr(heard)]
    store = await Store.open(str(tmp_path / "state.db"))
    try:
        [signature] = await store.signatures()
        assert (signature["path"], signature["count"]) == ("$.token", 3)
        [kept] = await store.samples(signature=signature["signature"], limit=1)
    finally:
        await store.close()
    # the sample was built when it was held: the replies as a sample keeps them
    assert kept["sample"]["primary"]["body"]["bytes"] > 0
    assert not [t for t in tokens if t in repr(kept)]


async def test_fresh_values_are_learnt_without_a_rule_or_a_second_request(
        aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    config, legacy, databases = await _pair(aiohttp_server, tmp_path, ("pro", "free"),
                                            min_fresh=6)
    sent = 0

    async def traffic(http, n: int) -> None:
        nonlocal sent
        for _ in range(n):
            await one_round(http, runtime, sent // 3 % 3)
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
        notes = {v: sample_value(runtime, "shadow_requests_total", route="/api/notes",
                                 method="POST", verdict=v) for v in ("match", "mismatch")}
        notes = {v: n for v, n in notes.items() if n}
        settled = {why: sample_value(runtime, "shadow_held_settled_total", why=why)
                   for why in ("learnt", "refused", "bound", "stopped")}
        learnt = {r["route"]: r for r in runtime.noise.listing()}
        saved = repr(runtime.noise.saved())

    # the real change is caught in every reply; the token beside it during the cold start
    # (a comparison with another difference is recorded at once, as it stands)
    assert after["$.plan"] == before["$.plan"] + 12
    assert after["$.code"] == before["$.code"] + 12 == 20  # stable per id: never learnt
    assert after["$.token"] == before["$.token"] <= 6
    # the error id, alone in its replies, is never a mismatch: held, then learnt
    assert "$.error_id" not in before and "$.error_id" not in after
    assert noise == 22 and notes == {"match": 22}
    assert settled["learnt"] >= 1 and settled["bound"] == settled["stopped"] == 0
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
    assert last["$.token"] == after["$.token"] + 2 and "$.error_id" not in last
    assert "note refused" not in saved
