"""Reads on the shadow see the same writes as on the primary, reads that write included.

Real proxy, real apps, real databases (legacy SQLite, candidate PostgreSQL). Clients run
concurrently, but their requests are taken one at a time on the primary (a client lock),
so the order every read saw there is known; the candidate is a slow port (each `/feed` and
`POST /items` takes longer there), so on the shadow a request that ignored that order
would overtake the one before it.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support import VIEWER, admin_url, proxy_url, running, settle
from tests.writes.apps import build_pair

pytestmark = pytest.mark.postgres

SLOW = 0.15
"""Seconds the candidate spends in each `/feed` and `POST /items` (the legacy build: 0)."""


async def _clients(runtime, session, plan: list[list[tuple[str, str]]]) -> None:
    """Run each client's (method, path) list concurrently with the others, one request
    at a time on the primary."""
    turn = asyncio.Lock()

    async def client(requests):
        for method, path in requests:
            async with turn:
                async with session.request(method, proxy_url(runtime, path),
                                           json={"name": path} if method == "POST" else None) as r:
                    assert r.status in (200, 201)
                    await r.read()
            await asyncio.sleep(0)

    await asyncio.gather(*(client(requests) for requests in plan))


async def test_a_summary_of_audit_rows_sees_the_audited_reads_served_before_it(
        aiohttp_server, tmp_path, pg_dsn):
    """`GET /feed` writes an audit row on both builds; `GET /audits` counts them. Once
    row capture has seen `/feed` write, it is ordered as a write on the shadow: the summary
    waits for the audited reads the primary served before it, and the next audited read
    waits for the summary."""
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, audit=True,
                                    sides={"legacy": {"audit": True},
                                           "candidate": {"delay": SLOW}})
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        learning = [("GET", "/feed")] * 6
        await _clients(runtime, session, [learning])
        await settle(runtime, len(learning), timeout=20)
        assert runtime.writes.attribution.writes("/feed", False)
        plan = [[("GET", "/feed"), ("GET", "/audits")] * 5 for _ in range(3)]
        await _clients(runtime, session, plan)
        await settle(runtime, len(learning) + 30, timeout=30)
        async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as r:
            writes = (await r.json())["writes"]
    summaries = [c for c in seen if c.exchange.route == "/audits"]
    assert len(summaries) == 15
    assert [(c.verdict, c.differences) for c in seen if c.verdict != "match"] == []
    assert "waits_expired" in writes


async def test_counts_read_while_writes_run_see_the_writes_served_before_them(
        aiohttp_server, tmp_path, pg_dsn):
    """Writers and readers of one table at once: each count on the shadow is the count
    the primary answered."""
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn,
                                    sides={"candidate": {"delay": SLOW}})
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        writers = [[("POST", "/items")] * 6 for _ in range(2)]
        readers = [[("GET", "/feed")] * 6 for _ in range(2)]
        await _clients(runtime, session, writers + readers)
        await settle(runtime, 24, timeout=30)
    counts = [c for c in seen if c.exchange.route == "/feed"]
    assert len(counts) == 12 and all(c.verdict == "match" for c in counts)
    assert [c.verdict for c in seen].count("match") == 24


async def test_a_read_that_writes_on_the_candidate_only_is_still_caught_on_the_read(
        aiohttp_server, tmp_path, pg_dsn):
    """Learning `/feed` writing from the candidate makes it a candidate window on the
    legacy side too; its extra audit row stays a difference on the GET."""
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, audit=True)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        await _clients(runtime, session, [[("GET", "/feed")] * 6, [("POST", "/items")] * 3])
        await settle(runtime, 9, timeout=20)
    feeds = [c for c in seen if c.exchange.route == "/feed"]
    assert len(feeds) == 6
    assert all(c.verdict == "mismatch" and any(d.kind == "row_extra" and d.path.startswith("audit")
                                               for d in c.differences) for c in feeds)
