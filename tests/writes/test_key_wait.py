"""A shadow seconds behind still names the row its previous write made by the shadow's
key: the request waits until that write's rows are drained on the shadow, so the pair is
known when the id is translated. Legacy SQLite, candidate PostgreSQL whose sequence
stands five ahead, the candidate slow on one write."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest

from shadow.writes.attribution import KEY_WAIT
from tests.support import proxy_url, running, settle
from tests.writes.apps import build_pair, rows_of

pytestmark = pytest.mark.postgres


async def test_a_read_of_a_row_just_made_reaches_its_twin_on_a_shadow_behind_the_key_wait(
        aiohttp_server, tmp_path, pg_dsn):
    slow = asyncio.Event()
    config, _, candidate_db = await build_pair(
        aiohttp_server, tmp_path, pg_dsn, sides={"candidate": {"gates": {"slow": slow}}})
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("SELECT setval('items_id_seq', 5)")
    finally:
        await conn.close()
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        async with session.post(proxy_url(runtime, "/items"), json={"name": "first"}) as r:
            assert (await r.json())["id"] == 1  # 6 on the candidate: the key map learns it
        await settle(runtime, 1)
        opened = asyncio.get_running_loop().call_later(KEY_WAIT + 0.5, slow.set)
        try:
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": "new", "hold": "slow"}) as r:
                made = (await r.json())["id"]
            async with session.get(proxy_url(runtime, f"/items/{made}")) as r:
                assert r.status == 200  # the primary's row
            await settle(runtime, 3, timeout=20)
        finally:
            opened.cancel()
            slow.set()
        read = next(c for c in seen if c.exchange.method == "GET")
        assert read.shadow.reply.status == 200, read.differences
        assert read.verdict == "match", read.differences
        assert await rows_of(candidate_db) == [(6, "first"), (7, "new")]
        translated = [(t.path, t.shadow, t.primary) for t in read.translated]
        assert translated == [("$.id", 7, made)]
