"""The shadow replays the primary's concurrency, through real sockets: writes that
overlapped on the primary run together on the shadow (a slow one holds no other), and a
request sent after a write completed on the primary starts on the shadow only after that
write completed there."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.support import make_config, proxy_url, running, settle


def logging_app(log: list[str], gates: dict[str, asyncio.Event]) -> web.Application:
    """POST /w {"n", "gate"?} logs its start, waits for its gate if any, logs its end.
    GET /r logs itself."""
    app = web.Application()

    async def write(request: web.Request) -> web.Response:
        data = await request.json()
        log.append(f"start {data['n']}")
        gate = gates.get(data.get("gate", ""))
        if gate is not None:
            await gate.wait()
        log.append(f"end {data['n']}")
        return web.json_response({"n": data["n"]})

    async def read(request: web.Request) -> web.Response:
        log.append(f"read {request.query.get('n', '')}")
        return web.json_response({"ok": True})

    app.router.add_post("/w", write)
    app.router.add_get("/r", read)
    return app


async def test_overlapping_writes_run_together_on_the_shadow(aiohttp_server, tmp_path):
    primary_log: list[str] = []
    shadow_log: list[str] = []
    primary_gates = {"slow": asyncio.Event()}
    shadow_gates = {"slow": asyncio.Event()}
    legacy = await aiohttp_server(logging_app(primary_log, primary_gates))
    candidate = await aiohttp_server(logging_app(shadow_log, shadow_gates))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, aiohttp.ClientSession() as session:

        async def post(n: int, gate: str = "") -> None:
            async with session.post(proxy_url(runtime, "/w"), json={"n": n, "gate": gate}) as r:
                assert r.status == 200

        slow = asyncio.ensure_future(post(0, "slow"))
        async with asyncio.timeout(5):
            while "start 0" not in shadow_log:
                await asyncio.sleep(0.01)
        await post(1)                   # overlaps the slow write on the primary...
        async with asyncio.timeout(5):  # ...so on the shadow it does not wait for it either
            while "end 1" not in shadow_log:
                await asyncio.sleep(0.01)
        assert "end 0" not in shadow_log and "end 0" not in primary_log
        primary_gates["slow"].set()
        shadow_gates["slow"].set()
        await slow
        await settle(runtime, 2)


async def test_what_followed_a_write_on_the_primary_follows_it_on_the_shadow(aiohttp_server,
                                                                             tmp_path):
    primary_log: list[str] = []
    shadow_log: list[str] = []
    shadow_gates = {"w": asyncio.Event()}
    legacy = await aiohttp_server(logging_app(primary_log, {}))
    candidate = await aiohttp_server(logging_app(shadow_log, shadow_gates))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        async with session.post(proxy_url(runtime, "/w"), json={"n": 1, "gate": "w"}) as r:
            assert r.status == 200      # done on the primary; held on the shadow
        async with session.get(proxy_url(runtime, "/r?n=a")) as r:
            assert r.status == 200
        async with session.post(proxy_url(runtime, "/w"), json={"n": 2}) as r:
            assert r.status == 200
        await asyncio.sleep(0.1)
        assert shadow_log == ["start 1"]  # the read and the next write wait for write 1
        shadow_gates["w"].set()
        await settle(runtime, 3)
    assert primary_log == ["start 1", "end 1", "read a", "start 2", "end 2"]
    assert shadow_log == primary_log
