"""An audited read beside a write is never sent again by the recheck: real proxy, real
apps, real databases (legacy SQLite, candidate PostgreSQL, row capture on both).

Both builds write an audit row on every `GET /feed`. A `POST /items` is held on both
builds while a `GET /feed` runs, so on each side the read's audit row is committed while
the write's window is open too; a route not yet seen writing is no candidate for a change
a write's window holds, so the row is charged to the write and the read looks as if it
wrote nothing. The candidate holds one more item than the legacy build: the counts differ.
Sending that read again would write a second audit row on both builds: an audit trail
that says the client read twice. It is recorded `raced` instead, and each build holds the
one audit row its client's read wrote.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
import asyncpg
import pytest

from shadow.verdict import Verdict
from tests.support import proxy_url, running
from tests.writes.apps import build_pair, rows_of

pytestmark = pytest.mark.postgres


async def _until(check, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_an_audited_read_whose_row_was_charged_to_a_write_is_not_sent_again(
        aiohttp_server, tmp_path, pg_dsn):
    gates = {"legacy": asyncio.Event(), "candidate": asyncio.Event()}
    config, legacy_db, candidate_db = await build_pair(
        aiohttp_server, tmp_path, pg_dsn, audit=True, noise={"share": 0},
        sides={"legacy": {"audit": True, "gates": {"x": gates["legacy"]}},
               "candidate": {"gates": {"x": gates["candidate"]}}})
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("INSERT INTO items (name) VALUES ('only on the candidate')")
    await conn.close()
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)

        async def write():
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": "x", "hold": "x"}) as r:
                assert r.status == 201

        writing = asyncio.create_task(write())
        clocks = runtime.clocks
        await _until(lambda: clocks.primary.in_flight == 1 and clocks.shadow.in_flight == 1)
        concluded = runtime.verifier.concluded
        async with session.get(proxy_url(runtime, "/feed")) as r:
            assert (await r.json()) == {"items": 0}
        await _until(lambda: runtime.verifier.concluded > concluded)
        for gate in gates.values():
            gate.set()
        await writing
        await _until(lambda: len(seen) == 2 and not len(runtime.verifier.recheck))
        await _until(lambda: runtime.lane.depth == 0 and runtime.lane.busy == 0)
        status = runtime.writes.attribution.status()
    assert len(await rows_of(legacy_db, "audit")) == 1
    assert len(await rows_of(candidate_db, "audit")) == 1
    [feed] = [c for c in seen if c.exchange.route == "/feed"]
    assert feed.primary.rows == () and feed.shadow.rows == ()  # charged to the write
    assert (feed.verdict, feed.reason) == (Verdict.RACED, "resend_writes")
    assert status["resent_rows"] == 0
