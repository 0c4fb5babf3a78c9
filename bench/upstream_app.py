"""A deterministic JSON API used as both backends in benchmarks.

    GET  /api/items/{id}    ~1 KB item          GET /api/items   ~9 KB list of 12
    POST /api/items         201, echoes the body
    GET  /__stats           {"requests": n} served so far (itself not counted)

python bench/upstream_app.py PORT [--delay-ms D]
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web


def item(i: int) -> dict:
    return {"id": i, "name": f"item {i}", "score": i % 10, "tags": ["calm", "tired", "ok"],
            "note": "x" * 700, "created_at": "2026-02-04 15:47:20", "active": i % 2}


def build(delay: float) -> web.Application:
    app = web.Application()
    served = [0]

    async def pause() -> None:
        served[0] += 1
        if delay:
            await asyncio.sleep(delay)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": served[0]})

    async def one(request: web.Request) -> web.Response:
        await pause()
        return web.Response(body=orjson.dumps(item(int(request.match_info["id"]))),
                            content_type="application/json")

    async def many(request: web.Request) -> web.Response:
        await pause()
        return web.Response(body=orjson.dumps([item(i) for i in range(12)]),
                            content_type="application/json")

    async def create(request: web.Request) -> web.Response:
        await pause()
        return web.Response(status=201, body=await request.read(), content_type="application/json")

    app.router.add_get("/api/items/{id}", one)
    app.router.add_get("/api/items", many)
    app.router.add_post("/api/items", create)
    app.router.add_get("/__stats", stats)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    web.run_app(build(args.delay_ms / 1000), host="127.0.0.1", port=args.port, print=None,
                access_log=None)
