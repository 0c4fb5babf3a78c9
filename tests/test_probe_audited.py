"""An A/A probe never repeats a read whose own rows may have been charged to a write
beside it: real proxy, real apps, real databases (legacy SQLite, candidate PostgreSQL,
row capture on both).

Both builds audit every `GET /feed` and every `GET /items/{id}`. `/feed` is read alone
first, until row capture has seen it write: six times (then it is ordered as a write on
the shadow), or once (then it is counted beside other exchanges only as a read seen
writing). Each build takes a while before it writes the audit row of a `/feed`. A `GET /items/1` sent while a `/feed`
runs commits its audit row inside both windows, on each build; `/feed` is known to write
and `/items/{id}` is not, so the row is charged to `/feed`, and the item read looks as if
it wrote nothing. Probed, it would write a second audit row on the primary alone: the
two audit logs would differ for good, and the primary's would say the client read twice.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support import proxy_url, running, settle
from tests.writes.apps import build_pair, rows_of

pytestmark = pytest.mark.postgres

SLOW = 0.4
"""Seconds each build waits in each `GET /feed` before it writes its audit row."""


async def _until(check, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def idle(runtime) -> None:
    """Until the mirror lane (shadow requests and probes) has nothing left to do."""
    await _until(lambda: not runtime.lane.depth and not runtime.lane.busy)


@pytest.mark.parametrize("learning", [6, 1])
async def test_an_audited_read_beside_a_read_that_writes_is_not_probed(
        aiohttp_server, tmp_path, pg_dsn, learning):
    config, legacy_db, candidate_db = await build_pair(
        aiohttp_server, tmp_path, pg_dsn, audit=True,
        noise={"share": 1.0, "min_pairs": 50}, compare={"recheck": {"enabled": False}},
        sides={"legacy": {"audit": True, "audit_items": True, "delay": SLOW},
               "candidate": {"audit_items": True, "delay": SLOW}})
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        seen = []
        runtime.verifier.listeners.append(seen.append)
        async with http.post(proxy_url(runtime, "/items"), json={"name": "a"}) as r:
            assert r.status == 201
        attribution = runtime.writes.attribution
        for _ in range(learning):
            async with http.get(proxy_url(runtime, "/feed")) as r:
                assert r.status == 200
            await _until(lambda: "/feed" in attribution.learnt.routes)  # seen writing
        await settle(runtime, 1 + learning, timeout=20)
        await idle(runtime)
        assert attribution.writes("/feed", False) == (learning > 1)  # ordered as a write

        async def feed() -> None:
            async with http.get(proxy_url(runtime, "/feed")) as r:
                assert r.status == 200

        reading = asyncio.create_task(feed())
        await _until(lambda: runtime.clocks.primary.in_flight == 1)
        async with http.get(proxy_url(runtime, "/items/1")) as r:
            assert (await r.json()) == {"id": 1, "name": "a"}
        await reading
        await settle(runtime, 3 + learning, timeout=20)
        await idle(runtime)
    [item] = [c for c in seen if c.exchange.route == "/items/{id}"]
    assert item.primary.rows == () and item.overlapped > 0  # its row: the /feed's
    assert "GET /items/{id}" not in {r["route"] for r in runtime.noise.listing()}
    client_reads = learning + 1 + 1
    assert len(await rows_of(legacy_db, "audit")) == client_reads
    assert len(await rows_of(candidate_db, "audit")) == client_reads
