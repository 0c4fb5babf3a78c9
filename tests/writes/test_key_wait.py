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
from tests.writes.test_group_ids import Sides

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


async def test_a_read_of_a_row_whose_group_is_still_open_reaches_its_twin(
        aiohttp_server, tmp_path, pg_dsn):
    """`a`, `b` and `c` overlap on both builds; legacy numbers a 1 and b 2, the candidate
    b 1 and a 2, and `c` stays open, so their group cannot be compared yet. A read of the
    row `a` made, sent once a and b are done, still reaches a's twin (2 on the candidate):
    a's insert has exactly one twin by content among the group's rows drained so far, and
    that pair is learnt before the group is compared. The group's own comparison, later,
    finds all three the same."""
    sides = Sides()
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, sides=sides.config())
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)

        async def post(name: str) -> dict:
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": name, "hold": name}) as reply:
                return await reply.json()

        posts = {n: asyncio.ensure_future(post(n)) for n in ("a", "b", "c")}
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(g.arrived.wait() for g in sides.gates["legacy"].values()))
                await sides.commit("legacy", ["a", "b"])
                made = (await posts["a"])["id"]
                await posts["b"]
                await sides.commit("candidate", ["b", "a"])
                async with session.get(proxy_url(runtime, f"/items/{made}")) as r:
                    assert (await r.json())["name"] == "a"  # the primary's row
                await settle(runtime, 1)  # the read; a and b wait for c, their group
                await sides.commit("legacy", ["c"])
                await sides.commit("candidate", ["c"])
                await posts["c"]
                await settle(runtime, 4)
        finally:
            for task in posts.values():
                task.cancel()
        status = runtime.cutover.status()["writes"]
    read = next(c for c in seen if c.exchange.method == "GET")
    assert read.shadow.reply.status == 200 and read.verdict == "match", read.differences
    assert [(t.path, t.shadow, t.primary) for t in read.translated] == [("$.id", 2, made)]
    writes = [c for c in seen if c.exchange.method == "POST"]
    assert [c.verdict for c in writes] == ["match"] * 3, [c.differences for c in writes]
    assert status["pairs_learnt_early"] >= 2 and status["writes_grouped"] == 3
