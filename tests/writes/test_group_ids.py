"""Overlapping writes that take their ids in another order on each side (legacy SQLite,
candidate PostgreSQL): each reply's ids are read through the pairs its group's rows
taught, also when the group grew past its bound, and a sample says which ids were read."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
import pytest

from tests.support import proxy_url, running, settle
from tests.writes.apps import build_pair

pytestmark = pytest.mark.postgres
NAMES = ["a", "b", "c"]


class Gate(asyncio.Event):
    """An event that also tells when a request started waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def wait(self) -> bool:
        self.arrived.set()
        return await super().wait()


class Sides:
    """Per build, a gate per name and an event per name told when its insert is done."""

    def __init__(self) -> None:
        self.gates = {b: {n: Gate() for n in NAMES} for b in ("legacy", "candidate")}
        self.inserted = {b: defaultdict(asyncio.Event) for b in ("legacy", "candidate")}

    def config(self) -> dict:
        return {b: {"gates": self.gates[b], "inserted": self.inserted[b]} for b in self.gates}

    async def commit(self, backend: str, order: list[str]) -> None:
        """Let `backend` insert the held names one by one, in `order`."""
        for name in order:
            self.gates[backend][name].set()
            await self.inserted[backend][name].wait()


async def overlapping_writes(runtime, sides: Sides, candidate_order: list[str]) -> list[dict]:
    """POST a, b, c at once, held on both builds: legacy inserts them in that order, the
    candidate in `candidate_order`. All three are held on the primary before any goes on,
    so they overlap there, and none has to follow another on the shadow. Returns the
    client's replies."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        async def post(name: str) -> dict:
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": name, "hold": name}) as reply:
                return await reply.json()
        posts = [asyncio.ensure_future(post(n)) for n in NAMES]
        try:
            await asyncio.gather(*(g.arrived.wait() for g in sides.gates["legacy"].values()))
            await sides.commit("legacy", NAMES)
            await sides.commit("candidate", candidate_order)
            return list(await asyncio.gather(*posts))
        finally:
            for post_task in posts:
                post_task.cancel()


def reply_name(comparison) -> str:
    return comparison.exchange.body.decode().split('"name": "')[1].split('"')[0]


async def run(aiohttp_server, tmp_path, pg_dsn, candidate_order, **extra):
    sides = Sides()
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, sides=sides.config(),
                                    **extra)
    async with running(config) as runtime:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        replies = await overlapping_writes(runtime, sides, candidate_order)
        await settle(runtime, len(NAMES))
        named = {reply_name(c): c for c in seen}
        return runtime, replies, named, runtime.cutover.status()["writes"]


async def test_a_group_numbered_in_another_order_is_compared_through_its_own_pairs(
        aiohttp_server, tmp_path, pg_dsn):
    _, replies, named, writes = await run(aiohttp_server, tmp_path, pg_dsn, ["c", "b", "a"])
    assert [r["id"] for r in replies] == [1, 2, 3]  # the client sees the primary's ids
    assert {n: c.verdict for n, c in named.items()} == dict.fromkeys(NAMES, "match")
    assert named["a"].primary.rows and len(named["a"].primary.rows) == 3  # one group
    read = {n: [(t.path, t.table, t.shadow, t.primary, t.source) for t in c.translated]
            for n, c in named.items()}
    assert read == {"a": [("$.id", "items", 3, 1, "group")], "b": [],
                    "c": [("$.id", "items", 1, 3, "group")]}
    assert writes["writes_grouped"] == 3


async def test_a_group_past_its_bound_verifies_its_rows_one_by_one_and_reads_its_ids(
        aiohttp_server, tmp_path, pg_dsn):
    runtime, _, named, writes = await run(aiohttp_server, tmp_path, pg_dsn, ["b", "c", "a"],
                                          rows={"max_group": 2})
    assert {c.reason for c in named.values()} == {""}  # rows compared, not skipped
    assert writes["writes_grouped"] == 3 and writes["writes_exact"] == 0  # not counted exact
    assert {n: c.verdict for n, c in named.items()} == dict.fromkeys(NAMES, "match")
    keymap = runtime.rows.keymap
    assert [keymap.shadow_key("items", (k,)) for k in (1, 2, 3)] == [(3,), (1,), (2,)]
    assert {n: [(t.shadow, t.primary) for t in c.translated] for n, c in named.items()} == {
        "a": [(3, 1)], "b": [(1, 2)], "c": [(2, 3)]}


async def test_a_lost_commit_in_a_group_past_its_bound_is_one_row_missing(
        aiohttp_server, tmp_path, pg_dsn):
    runtime, _, named, writes = await run(aiohttp_server, tmp_path, pg_dsn, ["c", "a", "b"],
                                          rows={"max_group": 2}, lost=frozenset({"b"}))
    rows = [(n, d.kind, d.path) for n, c in named.items() for d in c.differences
            if d.kind.startswith("row_")]
    assert len(rows) == 1 and rows[0][1:] == ("row_missing", "items[2]")
    assert {c.reason for c in named.values()} == {""}
    assert not [d for n, c in named.items() for d in c.differences
                if d.path == "$.id" and n != "b"]  # b's reply names the id it lost
    writes = runtime.cutover.status()["writes"]
    assert writes["changes_unpaired"] == 0 and writes["changes_verified"] == 2  # a and c


async def test_a_sample_shows_the_ids_read_through_the_group(aiohttp_server, tmp_path, pg_dsn):
    runtime, _, named, _ = await run(aiohttp_server, tmp_path, pg_dsn, ["c", "a", "b"],
                                  lost=frozenset({"b"}))
    a = named["a"]
    assert a.verdict == "mismatch"
    assert {d.kind for d in a.differences} >= {"row_missing"}
    assert not [d for d in a.differences if d.path == "$.id"]
    sample = runtime.verifier.sample(a)
    assert sample["translated"] == [{"path": "$.id", "table": "items", "source": "group",
                                     "shadow": 2, "read_as": 1}]
