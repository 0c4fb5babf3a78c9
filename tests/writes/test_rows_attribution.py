"""Row attribution through the proxy against real databases (legacy SQLite, candidate
PostgreSQL): groups, reads that write, outside writes."""

from __future__ import annotations

import asyncio

import aiohttp
import aiosqlite
import pytest

from tests.support import VIEWER, admin_url, proxy_url, running, sample_value, settle
from tests.writes.apps import build_pair, rows_of

pytestmark = pytest.mark.postgres


async def overlapping(runtime, session, names: list[str], gate: asyncio.Event) -> None:
    """POST every name at once, all held on both backends until `gate` is set."""
    async def post(name):
        async with session.post(proxy_url(runtime, "/items"),
                                json={"name": name, "hold": "g"}) as reply:
            assert reply.status == 201
    posts = [asyncio.ensure_future(post(n)) for n in names]
    await asyncio.sleep(0.2)
    gate.set()
    await asyncio.gather(*posts)


async def test_a_write_of_a_group_that_loses_its_commit_is_row_missing_on_the_group(
        aiohttp_server, tmp_path, pg_dsn):
    gate = asyncio.Event()
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, gates={"g": gate},
                            lost=frozenset({"b"}))
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        await overlapping(runtime, session, ["a", "b"], gate)
        await settle(runtime, 2)
        status = runtime.cutover.status()["writes"]
    # Both exchanges of the group carry the group's missing row, naming both of them (the
    # rolled-back insert may also have burnt a candidate id: a key difference, not asserted).
    missing = [d.primary["name"] for c in seen for d in c.differences if d.kind == "row_missing"]
    assert missing == ["b", "b"]
    details = [d.detail for c in seen for d in c.differences if d.kind == "row_missing"]
    assert all("group of 2" in d and d.count("POST /items #") == 2 for d in details)
    assert status["writes_grouped"] == 2 and status["writes_exact"] == 0
    # one missing row, carried by both exchanges of its group, is counted once
    assert sample_value(runtime, "shadow_row_mismatches_total", table="items",
                        kind="row_missing") == 1


async def test_writes_one_after_another_are_attributed_exactly(aiohttp_server, tmp_path, pg_dsn):
    config, legacy_db, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        for n in range(6):
            async with session.post(proxy_url(runtime, "/items"), json={"name": f"n{n}"}) as r:
                created = await r.json()
            async with session.get(proxy_url(runtime, f"/items/{created['id']}")) as r:
                assert (await r.json())["name"] == f"n{n}"
        await settle(runtime, 12)
        async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as r:
            writes = (await r.json())["writes"]
    assert [c.verdict for c in seen] == ["match"] * 12
    assert [len(c.primary.rows) for c in seen if c.exchange.method == "POST"] == [1] * 6
    assert writes["writes_exact"] == 6 and writes["exact_share"] == 1.0
    assert [r[1] for r in await rows_of(legacy_db)] == [r[1] for r in await rows_of(pg_dsn)]


async def test_a_read_that_writes_on_the_candidate_only_is_a_difference_on_that_read(
        aiohttp_server, tmp_path, pg_dsn):
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, audit=True)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        for path in ("/items", "/feed", "/items"):
            method = session.post if path == "/items" else session.get
            async with method(proxy_url(runtime, path), json={"name": "x"}) as r:
                assert r.status in (200, 201)
        await settle(runtime, 3)
    by_route = [(c.exchange.method, c.verdict, [d.kind for d in c.differences])
                for c in sorted(seen, key=lambda c: c.exchange.received_at)]  # one-sided rows wait
    assert by_route == [("POST", "match", []), ("GET", "mismatch", ["row_extra"]),
                        ("POST", "match", [])]


async def test_outside_writes_are_reported_and_charged_to_no_route(aiohttp_server, tmp_path,
                                                                   pg_dsn):
    # triggers log a write made while the proxy is down until it is drained (the
    # write-ahead log capture's account of such writes: test_rows_sqlite_wal_capture.py)
    config, legacy_db, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn,
                                    rows={"drain_interval": 0.05, "max_outside_writes": 3,
                                          "sqlite_capture": "triggers"})
    path = legacy_db.removeprefix("sqlite://")

    async def outside(name: str) -> None:
        async with aiosqlite.connect(path) as db:
            await db.execute("INSERT INTO items (name) VALUES (?)", (name,))
            await db.commit()

    await outside("while the proxy was down")
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        counts = runtime.writes.attribution.outside.counts
        assert counts == {"legacy": {"items": 1}} and runtime.rows.diverged is None
        await outside("a cron job")
        async with asyncio.timeout(5):
            while counts["legacy"]["items"] < 2:
                await asyncio.sleep(0.02)
        async with session.post(proxy_url(runtime, "/items"), json={"name": "proxied"}) as r:
            assert r.status == 201
        await settle(runtime, 1)
        for n in range(2):
            await outside(f"script {n}")
        async with asyncio.timeout(5):
            while runtime.rows.diverged is None:
                await asyncio.sleep(0.02)
        async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as r:
            status = await r.json()
        async with session.get(admin_url(runtime, "/"), headers=VIEWER) as r:
            page = await r.text()
        await runtime.store.flush()
        entries = await runtime.store.signatures(kind="outside_write")
    assert [(e["route"], e["path"], e["count"]) for e in entries] == [
        ("(outside writes)", "legacy.items", 4)]
    assert seen[0].verdict == "mismatch"  # the databases differ by the outside rows' ids
    assert [len(c.primary.rows) for c in seen] == [1]
    assert status["writes"]["outside"]["by_backend"] == {"legacy": {"items": 4}}
    assert "outside writes on legacy" in status["rows"]["diverged"]
    assert 'id="banner-outside"' in page and "4 row changes were made outside the proxy " \
        "(legacy: items 4)" in page
    metric = runtime.metrics.registry.get_sample_value(
        "shadow_outside_writes_total", {"backend": "legacy", "table": "items"})
    assert metric == 4
