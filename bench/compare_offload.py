"""Does a heavy comparison delay other clients? An unrelated endpoint's latency while a
2 MB JSON listing goes through the proxy, in four runs on this machine:

    match-offload      the candidate's listing is byte-identical (compared in microseconds)
    mismatch-offload   the candidate returns the same items in another order (the missing
                       ORDER BY case): compared in a worker process (the default)
    match-inline, mismatch-inline
                       the same with compare.offload_workers = 0: compared on the event loop

While one client fetches /big in a loop (one request at a time, 50 ms apart), another
sends /ping and records its latency. Printed per run: /ping p50, p99 and max, and how
many /big exchanges were compared. Compare the ratios within one run.
Usage: python -m bench.compare_offload [--pings N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from shadow.app import Runtime
from shadow.config import parse_config


def listing(n: int = 16_000, seed: int = 1, shuffled: bool = False) -> bytes:
    """A JSON listing of `n` items (about 1.1 MB at 16 000), optionally shuffled."""
    rng = random.Random(seed)
    items = [{"id": i, "name": f"user {i}", "score": rng.random(), "tags": ["a", "b"]}
             for i in range(n)]
    if shuffled:
        rng.shuffle(items)
    return orjson.dumps({"items": items})


def heavy_app(body: bytes) -> web.Application:
    """An upstream with GET /big (the listing `body`) and GET /ping (a tiny reply)."""
    app = web.Application()

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    app.router.add_get("/big", big)
    app.router.add_get("/ping", ping)
    return app


async def ping_latencies(proxy: str, pings: int) -> tuple[list[float], int]:
    """(latencies of /ping, how many /big were sent meanwhile) through the proxy at `proxy`."""
    async with aiohttp.ClientSession() as client:
        stop = asyncio.Event()

        async def heavy() -> int:
            sent = 0
            while not stop.is_set():
                async with client.get(f"{proxy}/big") as r:
                    await r.read()
                sent += 1
                await asyncio.sleep(0.05)
            return sent

        heavy_task = asyncio.create_task(heavy())
        await asyncio.sleep(0.5)
        timings = []
        for _ in range(pings):
            started = time.perf_counter()
            async with client.get(f"{proxy}/ping") as r:
                await r.read()
            timings.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
        stop.set()
        return timings, await heavy_task


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


async def run_case(name: str, shuffled: bool, workers: int, pings: int, state: Path) -> None:
    legacy, legacy_url = await _serve(heavy_app(listing(n=30_000)))
    candidate, candidate_url = await _serve(heavy_app(listing(n=30_000, shuffled=shuffled)))
    config = parse_config({
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "log": {"level": "error"},
        "backends": {"legacy": {"url": legacy_url}, "candidate": {"url": candidate_url}},
        "store": {"path": str(state / f"{name}.db")},
        "compare": {"offload_workers": workers},
        "routes": [{"template": "/big"}, {"template": "/ping"}]})
    runtime = Runtime(config)
    try:
        await runtime.start()
        timings, sent = await ping_latencies(f"http://127.0.0.1:{runtime.proxy_port}", pings)
        await asyncio.sleep(1.0)
    finally:
        await runtime.stop(deadline=30.0)
        await legacy.cleanup()
        await candidate.cleanup()
    ms = sorted(t * 1000 for t in timings)
    print(f"{name:18} /ping p50 {statistics.median(ms):7.2f} ms  p99 "
          f"{ms[int(len(ms) * 0.99) - 1]:7.2f} ms  max {ms[-1]:7.2f} ms   /big sent {sent}")


async def main(pings: int) -> None:
    print(f"body {len(listing(n=30_000)) / 1e6:.1f} MB, {pings} pings per case")
    with tempfile.TemporaryDirectory() as tmp:
        for name, shuffled, workers in (("match-offload", False, 1),
                                        ("mismatch-offload", True, 1),
                                        ("match-inline", False, 0),
                                        ("mismatch-inline", True, 0)):
            await run_case(name, shuffled, workers, pings, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=300)
    asyncio.run(main(parser.parse_args().pings))
