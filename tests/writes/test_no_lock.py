"""Writes reach the primary as they arrive: no client waits for another client's write,
whatever that client does (a slow write, a slow upload, a reply it never reads, a
disconnect). Real sockets, real SQLite files, row capture on."""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from tests.support import proxy_url, running, settle
from tests.writes.apps import BIG, build_pair, rows_of


def verdicts_of(runtime) -> list:
    seen: list = []
    runtime.verifier.listeners.append(seen.append)
    return seen


async def test_a_write_held_on_the_primary_holds_no_other_write(aiohttp_server, tmp_path):
    gates = {"slow": asyncio.Event()}
    config, legacy_db, candidate_db = await build_pair(aiohttp_server, tmp_path, gates=gates)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen = verdicts_of(runtime)

        async def post(name: str, hold: str = "") -> dict:
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": name, "hold": hold}) as reply:
                assert reply.status == 201
                return await reply.json()

        slow = asyncio.ensure_future(post("slow", hold="slow"))
        await asyncio.sleep(0.05)
        # With a global write lock these would wait for the slow write forever.
        fast = [await post(f"fast {n}") for n in range(5)]
        assert not slow.done()
        gates["slow"].set()
        await slow
        await settle(runtime, 6)
    assert [f["name"] for f in fast] == [f"fast {n}" for n in range(5)]
    # Every fast write overlapped the slow one: one group of six, compared as a whole (on
    # the shadow they may have run in another order: see test_groups.py for the verdicts).
    assert len(seen) == 6 and all("group of 6" in d.detail
                                  for c in seen for d in c.differences if d.kind.startswith("row"))
    names = [sorted(r[1] for r in await rows_of(db)) for db in (legacy_db, candidate_db)]
    assert names[0] == names[1] and len(names[0]) == 6


async def test_a_slow_uploader_and_an_unread_reply_hold_no_one(aiohttp_server, tmp_path):
    config, _, _ = await build_pair(aiohttp_server, tmp_path, proxy={"max_body_bytes": 1024})
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        # A client announces a large body (streamed to the primary) and sends it slowly.
        uploader = socket.create_connection(("127.0.0.1", runtime.proxy_port))
        uploader.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                         + b"a" * 2000)
        # Another asks for a large reply and never reads it.
        reader = socket.create_connection(("127.0.0.1", runtime.proxy_port))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.2)
        try:
            for n in range(5):
                async with session.post(proxy_url(runtime, "/items"), json={"name": f"n{n}"}) as r:
                    assert r.status == 201
            async with session.get(proxy_url(runtime, "/feed")) as r:
                assert (await r.json())["items"] == 5
        finally:
            uploader.close()
            reader.close()
    assert BIG > 1 << 20


async def test_a_client_that_disconnects_mid_write_holds_no_one_and_keeps_its_rows(
        aiohttp_server, tmp_path):
    gates = {"gone": asyncio.Event()}
    config, legacy_db, candidate_db = await build_pair(aiohttp_server, tmp_path, gates=gates)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen = verdicts_of(runtime)
        writer = socket.create_connection(("127.0.0.1", runtime.proxy_port))
        body = b'{"name": "left early", "hold": "gone"}'
        writer.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await asyncio.sleep(0.1)
        writer.close()                                 # gone before the primary answered
        await asyncio.sleep(0.05)
        async with session.post(proxy_url(runtime, "/items"), json={"name": "next"}) as r:
            assert r.status == 201
        gates["gone"].set()                            # the primary finishes the first write
        await settle(runtime, 2)
        async with session.post(proxy_url(runtime, "/items"), json={"name": "after"}) as r:
            assert r.status == 201
        await settle(runtime, 3)
    by_body = {c.exchange.body: c for c in seen}
    left = by_body[body]
    # Its rows stay with it: grouped with the write that overlapped it, never with a later one.
    assert left.verdict == "match" and left.primary.reply.status == 201
    assert sorted(r.after["name"] for r in left.primary.rows) == ["left early", "next"]
    assert [r.after["name"] for r in by_body[b'{"name": "after"}'].primary.rows] == ["after"]
    assert all(c.verdict == "match" for c in seen), [c.differences for c in seen]
    assert await rows_of(legacy_db) == await rows_of(candidate_db)
