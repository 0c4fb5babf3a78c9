"""The baseline a verifying proxy is measured against: the least a mirroring proxy does.

The primary is awaited and its reply returned; the same request is sent to the shadow
without waiting, under a bounded number in flight (beyond it, dropped); nothing is read
for comparison, nothing compared, counted or stored. One pooled session per backend.

    PRIMARY_URL=... SHADOW_URL=... LISTEN_PORT=... python bench/minimal_mirror.py
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def build(primary: str, shadow: str, limit: int = 64) -> web.Application:
    app = web.Application()
    state: dict = {"inflight": 0, "tasks": set()}

    async def sessions(app):
        for name in ("p", "s"):
            state[name] = aiohttp.ClientSession(auto_decompress=False,
                                                connector=aiohttp.TCPConnector(limit=256))
        yield
        for name in ("p", "s"):
            await state[name].close()

    async def mirror(method, target, headers, body):
        try:
            async with state["s"].request(method, shadow + target, headers=headers,
                                          data=body) as resp:
                await resp.read()
        except aiohttp.ClientError:
            pass
        finally:
            state["inflight"] -= 1

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
        if shadow and state["inflight"] < limit:
            state["inflight"] += 1
            task = asyncio.ensure_future(mirror(request.method, request.raw_path, headers, body))
            state["tasks"].add(task)
            task.add_done_callback(state["tasks"].discard)
        async with state["p"].request(request.method, primary + request.raw_path,
                                      headers=headers, data=body,
                                      allow_redirects=False) as resp:
            data = await resp.read()
            out = [(k, v) for k, v in resp.headers.items() if k.lower() not in HOP]
            return web.Response(status=resp.status, body=data, headers=out)

    app.cleanup_ctx.append(sessions)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(build(os.environ["PRIMARY_URL"], os.environ.get("SHADOW_URL", "")),
                host="127.0.0.1", port=int(os.environ["LISTEN_PORT"]), print=None,
                access_log=None)
