"""Ordered writes through real sockets: a write reaches the primary only once the write
before it has been answered in full (its reply's last byte), reads are never held by
the write lock, and the shadow receives the writes in the primary's order."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.support import make_config, proxy_url, running, settle


def logging_app(log: list[str], go: asyncio.Event) -> web.Application:
    """POST /w answers in a chunked reply that is held open until `go` is set; each
    write logs when it starts and when its reply is about to end."""
    app = web.Application()

    async def write(request: web.Request) -> web.StreamResponse:
        n = (await request.json())["n"]
        log.append(f"start {n}")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"head of the reply is out; ")
        await go.wait()
        log.append(f"end {n}")
        await response.write(b"done")
        await response.write_eof()
        return response

    async def read(request: web.Request) -> web.Response:
        log.append("read")
        return web.json_response({"ok": True})

    app.router.add_post("/w", write)
    app.router.add_get("/r", read)
    return app


async def test_writes_are_serialised_on_the_primary_and_replayed_in_its_order(aiohttp_server,
                                                                              tmp_path):
    primary_log: list[str] = []
    shadow_log: list[str] = []
    primary_go, shadow_go = asyncio.Event(), asyncio.Event()
    shadow_go.set()
    legacy = await aiohttp_server(logging_app(primary_log, primary_go))
    candidate = await aiohttp_server(logging_app(shadow_log, shadow_go))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, aiohttp.ClientSession() as session:

        async def post(n: int) -> bytes:
            async with session.post(proxy_url(runtime, "/w"), json={"n": n}) as reply:
                assert reply.status == 200
                return await reply.read()

        writes = [asyncio.ensure_future(post(n)) for n in range(3)]
        async with asyncio.timeout(5):
            while not primary_log:
                await asyncio.sleep(0.01)
        # The first write holds the lock, its reply half sent: a read still goes through.
        async with session.get(proxy_url(runtime, "/r")) as reply:
            assert reply.status == 200
        assert [e for e in primary_log if e.startswith("start")] == primary_log[:1]
        assert "read" in primary_log
        primary_go.set()
        assert await asyncio.gather(*writes) == [b"head of the reply is out; done"] * 3
        await settle(runtime, 4)

    events = [e for e in primary_log if e != "read"]
    # Never interleaved: each write starts after the previous one's reply ended.
    for i in range(0, len(events), 2):
        n = events[i].split()[1]
        assert events[i:i + 2] == [f"start {n}", f"end {n}"], primary_log
    starts = [e for e in events if e.startswith("start")]
    assert [e for e in shadow_log if e.startswith("start")] == starts
