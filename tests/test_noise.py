"""A/A calibration through a real proxy: noise the primary's build makes by itself is learnt
with no rule written, and a real difference is still caught."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from shadow.cli import main
from shadow.demo.runner import install_capture
from tests.support import (
    HITS, admin_url, counting, make_config, proxy_url, running, sample_value, settle,
)
from tests.writes.apps import items_app, row_config, rows_of, sqlite_databases

TOKEN = "noise-t0ken-for-tests"
ROUTES = [{"template": "/api/session"}, {"template": "/api/plan"}]


def build(tag: str) -> web.Application:
    """The same app on both sides: every reply carries a fresh token, the time it was
    served and a counter; the candidate's /api/plan names another plan (a real bug)."""
    app = web.Application()
    counter = itertools.count(1)

    def stamped(**fields):
        return web.json_response({"csrf_token": secrets.token_hex(16),
                                  "served_at": datetime.now(UTC).isoformat(),
                                  "views": next(counter), **fields})

    async def session(request):
        return stamped(user="ana", theme="dark")

    async def plan(request):
        return stamped(plan="pro" if tag == "legacy" else "free")

    app.router.add_get("/api/session", session)
    app.router.add_get("/api/plan", plan)
    return app


@pytest.fixture
async def proxied(aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    legacy, candidate = await aiohttp_server(build("legacy")), await aiohttp_server(build("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         noise={"share": 1.0, "min_pairs": 3}, routes=ROUTES)
    async with running(config) as runtime:
        yield runtime


async def send(runtime, http, path: str, n: int) -> None:
    for _ in range(n):
        async with http.get(proxy_url(runtime, path)) as response:
            assert response.status == 200
            await response.read()


async def calibrated(runtime, route: str) -> None:
    async with asyncio.timeout(10):
        while runtime.noise.calibrating(route):
            await asyncio.sleep(0.02)


async def unheld(runtime) -> None:
    """Wait until no comparison is held (shadow.holding) any more."""
    async with asyncio.timeout(10):
        while len(runtime.verifier.holding):
            await asyncio.sleep(0.02)


async def signature_counts(runtime) -> dict[str, int]:
    await runtime.store.flush()
    return {f"{s['method']} {s['route']} {s['path']}": s["count"]
            for s in await runtime.store.signatures()}


async def idle(runtime) -> None:
    """Wait until the mirror lane (shadow requests and probes) has nothing left to do."""
    async with asyncio.timeout(10):
        while runtime.lane.depth or runtime.lane.busy:
            await asyncio.sleep(0.01)


def mismatches(runtime, route: str) -> float:
    return sample_value(runtime, "shadow_requests_total", route=route, method="GET",
                        verdict="mismatch")


async def test_noise_is_learnt_without_rules_and_a_real_change_is_still_caught(proxied):
    runtime = proxied
    async with aiohttp.ClientSession() as http:
        await send(runtime, http, "/api/session", 4)
        await send(runtime, http, "/api/plan", 4)
        await calibrated(runtime, "GET /api/session")
        await calibrated(runtime, "GET /api/plan")
        await settle(runtime, 8)
        before = mismatches(runtime, "/api/session"), mismatches(runtime, "/api/plan")
        counts = await signature_counts(runtime)
        await send(runtime, http, "/api/session", 20)
        await send(runtime, http, "/api/plan", 5)
        await settle(runtime, 33)
    assert mismatches(runtime, "/api/session") == before[0]
    assert mismatches(runtime, "/api/plan") == before[1] + 5
    assert sample_value(runtime, "shadow_noise_total", route="/api/session", method="GET") > 0
    learnt = {r["route"]: {p["path"] for p in r["places"]} for r in runtime.noise.listing()}
    # `served_at` is not noise: each side's "now" is compared by meaning (replay lag)
    assert learnt["GET /api/session"] == {"$.csrf_token", "$.views"}
    assert "$.plan" not in learnt["GET /api/plan"]
    # while calibrating, the noise was reported; afterwards only the real change grows
    grown = {path for path, n in (await signature_counts(runtime)).items()
             if n > counts.get(path, 0)}
    assert grown == {"GET /api/plan $.plan"}


async def test_the_operator_rejects_a_learnt_place_and_it_is_compared_again(proxied):
    runtime = proxied
    async with aiohttp.ClientSession() as http:
        await send(runtime, http, "/api/session", 4)
        await calibrated(runtime, "GET /api/session")
        url = admin_url(runtime, "/api/noise")
        decision = {"route": "GET /api/session", "path": "$.csrf_token", "state": "rejected",
                    "reason": "tokens must match after the port"}
        async with http.post(url, json=decision) as response:
            assert response.status == 401
        async with http.post(url, json={**decision, "reason": ""},
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 400
        async with http.post(url, json={**decision, "path": "$.nowhere"},
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 404
        async with http.post(url, json=decision,
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
            assert (await response.json())["state"] == "rejected"
        await settle(runtime, 4)
        await unheld(runtime)  # a token held while it was learnt: a mismatch, now rejected
        before = mismatches(runtime, "/api/session")
        await send(runtime, http, "/api/session", 3)
        await settle(runtime, 7)
    assert mismatches(runtime, "/api/session") == before + 3
    [audit] = [a for a in await runtime.store.audit() if a["action"] == "noise_rejected"]
    assert audit["reason"] == "tokens must match after the port"
    env = {"SHADOW_ADMIN_URL": admin_url(runtime), "SHADOW_ADMIN_TOKEN": TOKEN}
    listed = await asyncio.to_thread(CliRunner().invoke, main, ["noise", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "GET /api/session" in listed.output and "rejected  $.csrf_token" in listed.output
    accepted = await asyncio.to_thread(
        CliRunner().invoke, main,
        ["noise", "accept", "GET /api/session", "$.views", "--reason", "a counter"], env=env)
    assert accepted.exit_code == 0 and "accepted" in accepted.output


async def test_what_was_learnt_survives_a_restart(aiohttp_server, tmp_path):
    legacy, candidate = await aiohttp_server(build("legacy")), await aiohttp_server(build("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         noise={"share": 1.0, "min_pairs": 2}, routes=ROUTES)
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as http:
            await send(runtime, http, "/api/session", 3)
            await calibrated(runtime, "GET /api/session")
    learnt = runtime.noise.listing()  # after the stop: probes still in flight then are in
    async with running(config) as again:
        assert again.noise.listing() == learnt
        assert not again.noise.calibrating("GET /api/session")


def ledger(slow_reads: float = 0.0) -> web.Application:
    """An app whose one value changes only by a write: GET /api/total reads it (after
    `slow_reads` seconds), POST /api/add adds one."""
    app = web.Application()
    total = {"n": 0}

    async def read(request):
        await asyncio.sleep(slow_reads)
        return web.json_response({"total": total["n"]})

    async def add(request):
        total["n"] += 1
        return web.json_response({"total": total["n"]}, status=201)

    app.router.add_get("/api/total", read)
    app.router.add_post("/api/add", add)
    return app


async def test_a_write_after_the_read_arrived_is_no_noise_even_when_done_before_the_probe(
        aiohttp_server, tmp_path):
    # The shadow reads slowly, so the read is compared (and probed) only after the
    # client's next write has come and gone on the primary: the probe would see that
    # write's effect, which is no noise.
    legacy, candidate = await aiohttp_server(ledger()), await aiohttp_server(ledger(0.4))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         noise={"share": 1.0, "min_pairs": 1},
                         routes=[{"template": "/api/total"}, {"template": "/api/add"}])
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        async with http.get(proxy_url(runtime, "/api/total")) as response:
            assert (await response.json()) == {"total": 0}
        async with http.post(proxy_url(runtime, "/api/add")) as response:
            assert response.status == 201
        await settle(runtime, 2)
        await idle(runtime)
        assert runtime.noise.calibrating("GET /api/total")  # the probe was thrown away
        await send(runtime, http, "/api/total", 1)  # nothing written since: a fair probe
        await calibrated(runtime, "GET /api/total")
    [route] = [r for r in runtime.noise.listing() if r["route"] == "GET /api/total"]
    assert route["pairs"] == 1 and route["places"] == []


async def test_a_read_that_writes_rows_is_never_sent_twice(aiohttp_server, tmp_path):
    # Both builds audit every GET /feed: sent again, the read would write a second audit
    # row on the primary alone (owned by no exchange, never on the shadow).
    databases = await sqlite_databases(tmp_path)
    legacy, candidate = [await aiohttp_server(items_app(db, audit=True)) for db in databases]
    config = row_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                        *databases, noise={"share": 1.0, "min_pairs": 2})
    await install_capture(config)
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        async with http.post(proxy_url(runtime, "/items"), json={"name": "a"}) as response:
            assert response.status == 201
        for path in ("/feed", "/items/1") * 3:
            async with http.get(proxy_url(runtime, path)) as response:
                assert response.status == 200
        await settle(runtime, 7)
        await idle(runtime)
        outside = runtime.writes.attribution.outside.total
    assert len(await rows_of(databases[0], "audit")) == 3  # one per client read, no more
    assert outside == 0
    pairs = {r["route"]: r["pairs"] for r in runtime.noise.listing()}
    assert "GET /feed" not in pairs and pairs["GET /items/{id}"] >= 2  # calibration was on


async def test_a_read_that_writes_or_opts_out_reaches_the_primary_once(aiohttp_server, tmp_path):
    """A/A sends a request to the primary's build a second time: never for a route that
    writes on a safe method (its audit row would be written twice in production), nor for
    one that opts out; the others are probed."""
    routes = [{"template": "/api/session"},
              {"template": "/api/audited", "writes": True},
              {"template": "/api/private", "calibrate": False}]
    async def plain(request):
        return web.json_response({"ok": True})

    apps = []
    for tag in ("legacy", "candidate"):
        app = counting(build(tag))
        for path in ("/api/audited", "/api/private"):
            app.router.add_get(path, plain)
        apps.append(await aiohttp_server(app))
    legacy, candidate = apps
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         noise={"share": 1.0, "min_pairs": 2}, routes=routes)
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        for path in ("/api/audited", "/api/private", "/api/session"):
            await send(runtime, http, path, 3)
        await calibrated(runtime, "GET /api/session")
        await settle(runtime, 9)
    hits = legacy.app[HITS]
    assert hits["/api/audited"] == 3 and hits["/api/private"] == 3
    assert hits["/api/session"] > 3
    assert {r["route"] for r in runtime.noise.listing() if r["how"] == "a/a"} == {
        "GET /api/session"}


def test_only_routes_that_neither_write_nor_opt_out_are_probed(tmp_path):
    from shadow.calibrate import probe_filter
    from shadow.routes import RouteTable
    from shadow.verdict import Exchange

    table = RouteTable.from_config(make_config(
        tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2",
        routes=[{"template": "/a"}, {"template": "/w", "writes": True},
                {"template": "/off", "calibrate": False}, {"template": "/on", "calibrate": True},
                {"template": "/mail", "policy": "skip"}]))
    allowed = probe_filter(table)

    def probed(path: str, backend: str = "legacy") -> bool:
        return allowed(Exchange("x-1", "GET", path + "?q=1", path, (), b"", 0.0), backend)

    assert probed("/a") and probed("/learned/{param}")
    assert not probed("/w") and not probed("/off") and not probed("/mail")
    assert probed("/on")


async def test_a_second_instance_takes_the_probes_off_the_serving_one(aiohttp_server, tmp_path):
    """With `calibration_url`, the A/A requests go to a second instance of the primary's
    build (on the same data), as Diffy does: the serving instance gets each client
    request once, and the noise is learnt all the same."""
    legacy = await aiohttp_server(counting(build("legacy")))
    twin = await aiohttp_server(counting(build("legacy")))
    candidate = await aiohttp_server(build("candidate"))
    config = make_config(
        tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
        backends={"legacy": {"url": str(legacy.make_url("")),
                             "calibration_url": str(twin.make_url(""))},
                  "candidate": {"url": str(candidate.make_url(""))}},
        noise={"share": 1.0, "min_pairs": 3}, routes=ROUTES)
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        await send(runtime, http, "/api/session", 4)
        await calibrated(runtime, "GET /api/session")
        await settle(runtime, 4)
    assert legacy.app[HITS]["/api/session"] == 4
    assert twin.app[HITS]["/api/session"] >= 3
    learnt = {r["route"]: {p["path"] for p in r["places"]} for r in runtime.noise.listing()}
    assert "$.csrf_token" in learnt["GET /api/session"]  # each instance counts views itself
