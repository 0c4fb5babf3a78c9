"""Mode changes under concurrent writes (legacy SQLite, candidate PostgreSQL): each flip
waits for the old mode's writes on both backends, so both databases end with the same
rows under the same keys, and a flip that cannot wait is refused or, forced, diverges."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support import admin_url, proxy_url, running, settle
from tests.writes.apps import build_pair, rows_of

pytestmark = pytest.mark.postgres
AUTH = {"Authorization": "Bearer t0ken"}


async def flip(session, runtime, mode: str, force: bool = False) -> tuple[int, dict]:
    async with session.post(admin_url(runtime, "/api/mode"), headers=AUTH, json={
            "mode": mode, "force": force, "reason": "flip under load"}) as reply:
        return reply.status, await reply.json()


async def test_flips_under_four_writers_keep_both_databases_the_same(
        aiohttp_server, tmp_path, pg_dsn, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", "t0ken")
    config, legacy_db, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn,
                                    gate={"min_samples": 1, "max_mismatch_rate": 1.0})
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        stop = asyncio.Event()
        statuses: list[int] = []

        async def writer(w: int) -> None:
            n = 0
            while not stop.is_set():
                async with session.post(proxy_url(runtime, "/items"),
                                        json={"name": f"w{w}-{n}"}) as reply:
                    statuses.append(reply.status)
                    await reply.read()
                n += 1

        writers = [asyncio.ensure_future(writer(w)) for w in range(4)]
        flips = []
        for mode in ("cutover", "shadow", "cutover", "shadow"):
            await asyncio.sleep(0.3)
            flips.append(await flip(session, runtime, mode, force=True))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*writers)
        await settle(runtime, len(statuses))
        status = runtime.cutover.status()
    assert [code for code, _ in flips] == [200] * 4
    assert all(not answer["change"]["forced"] or answer["gate"] for _, answer in flips)
    assert set(statuses) == {201} and len(statuses) > 20
    assert runtime.rows.diverged is None, runtime.rows.diverged
    assert status["rollback"]["clean"]
    mismatched = [(c.exchange.route, c.differences) for c in seen if c.verdict == "mismatch"]
    assert mismatched == []
    legacy, candidate = await rows_of(legacy_db), await rows_of(pg_dsn)
    assert len(legacy) == len(candidate) == len(statuses)
    by_key = {row[0]: row[1] for row in candidate}
    keymap = runtime.rows.keymap
    for key, name in legacy:
        paired = keymap.shadow_key("items", (key,))
        assert by_key[paired[0] if paired else key] == name


async def test_a_flip_that_cannot_wait_is_refused_or_forced_into_divergence(
        aiohttp_server, tmp_path, pg_dsn, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", "t0ken")
    gates = {"stuck": asyncio.Event()}
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, gates=gates,
                            proxy={"mode_change_wait": 0.3})
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        stuck = asyncio.ensure_future(session.post(proxy_url(runtime, "/items"),
                                                   json={"name": "stuck", "hold": "stuck"}))
        await asyncio.sleep(0.1)
        code, answer = await flip(session, runtime, "legacy-only")
        assert code == 409 and answer["error"] == "writes_in_flight"
        assert "1 write(s) on the primary" in answer["message"]
        assert runtime.modes.current.mode == "shadow" and runtime.rows.diverged is None
        code, answer = await flip(session, runtime, "legacy-only", force=True)
        assert code == 200 and answer["change"]["forced"]
        assert "forced" in runtime.rows.diverged
        gates["stuck"].set()
        (await stuck).close()
