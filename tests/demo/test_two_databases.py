"""The legacy build's two SQLite files, verified row by row against the candidate's one
PostgreSQL database (`databases = {main, achievements}` in the demo config).

A faithful pair writes the same rows in both files as the candidate in its one database
(`test_through_proxy.test_a_faithful_port_writes_the_same_rows`); a candidate that loses
a write loses it in both: the mood, points and badges of one request, missing from the
main file's tables and from the achievements file's."""

from __future__ import annotations

import aiohttp
import asyncpg

from shadow.demo.runner import demo_stack, settle
from shadow.verdict import Comparison


async def test_a_lost_write_is_row_missing_in_both_files(pg_dsn, tmp_path):
    """The port forgot the grant on the table it folded in: the candidate's DML-only role
    may not insert badges, so its whole mood transaction fails."""
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        seen: list[Comparison] = []
        runtime.verifier.listeners.append(seen.append)
        conn = await asyncpg.connect(pg_dsn)
        try:
            app_role = f"{await conn.fetchval('SELECT current_database()')}_app"
            await conn.execute(f'REVOKE INSERT ON achievements FROM "{app_role}"')
        finally:
            await conn.close()
        proxy = f"http://127.0.0.1:{runtime.proxy_port}"
        async with aiohttp.ClientSession(base_url=proxy,
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post("/api/register", json={"username": "nora_lost",
                                                        "password": "a long pass phrase"}) as r:
                assert r.status == 201
            async with http.post("/api/moods", json={"score": 6, "note": "calm"}) as r:
                assert r.status == 201  # the primary (legacy) wrote it
        await settle(runtime)
    [mood] = [c for c in seen if (c.exchange.method, c.exchange.route) == ("POST", "/api/moods")]
    assert mood.shadow.reply.status == 500
    missing = {d.path.split("[", 1)[0] for d in mood.differences if d.kind == "row_missing"}
    assert missing == {"moods", "points", "achievements"}  # main file, and achievements file
    assert {d.primary["badge"] for d in mood.differences
            if d.kind == "row_missing" and d.path.startswith("achievements")} == {
        "points_10", "first_mood"}
