"""Reads that raced writes, rechecked through a real proxy, real apps and real databases
(legacy SQLite, candidate PostgreSQL, row capture on both).

The race is made, not hoped for: a `POST /items` is held on the legacy build (the primary)
until the test lets it go, while the candidate (the shadow) has already committed its copy.
A `GET /feed` (a count of the rows) sent meanwhile counts 0 on the primary and 1 on the
shadow: a mismatch that overlapped a write. Once the write is done on both sides, the
recheck asks both builds again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import aiohttp
import asyncpg
import pytest

from shadow.browser import sample_detail
from shadow.recheck import Proof
from shadow.verdict import Verdict
from tests.support import VIEWER, admin_url, proxy_url, running, sample_value
from tests.writes.apps import build_pair

pytestmark = pytest.mark.postgres

RECHECKED = "shadow_reads_rechecked_total"
PROVEN = Proof().needed


async def _until(check, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def _pair(aiohttp_server, tmp_path, pg_dsn, raced_share: float = 0.5, **recheck):
    """The two builds, the POST of `x` held on the legacy one; (config, gate, inserted).
    `raced_share`: the gate's `max_raced_share`."""
    gate = asyncio.Event()
    inserted: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    config, _, _ = await build_pair(
        aiohttp_server, tmp_path, pg_dsn,
        sides={"legacy": {"gates": {"x": gate}}, "candidate": {"inserted": inserted}},
        compare={"recheck": recheck}, noise={"share": 0},
        gate={"max_raced_share": raced_share})
    return config, gate, inserted


@contextlib.asynccontextmanager
async def _watched(config):
    """The running proxy, a client session, and the comparisons recorded (listened to)
    after `/feed` was read alone PROVEN times: its route is then known to read without
    writing, so a read of it may be sent again."""
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        for _ in range(PROVEN):
            async with session.get(proxy_url(runtime, "/feed")) as r:
                await r.read()
        await _until(lambda: len(seen) == PROVEN)
        if runtime.verifier.recheck is not None:
            assert runtime.verifier.recheck.proof.proven("GET", "/feed")
        seen.clear()
        yield runtime, session, seen


async def _race(runtime, session, gate, inserted, seen) -> asyncio.Task:
    """A held write, and a count read while it runs; returns the write's task once the
    count's comparison is in (or held)."""
    async def write():
        async with session.post(proxy_url(runtime, "/items"), json={"name": "x", "hold": "x"}) as r:
            assert r.status == 201

    writing = asyncio.create_task(write())
    await inserted["x"].wait()                   # done on the shadow, held on the primary
    concluded, recorded = runtime.verifier.concluded, len(seen)
    async with session.get(proxy_url(runtime, "/feed")) as r:
        assert (await r.json()) == {"items": 0}  # the primary had not committed it
    await _until(lambda: runtime.verifier.concluded > concluded)
    assert len(seen) == recorded and len(runtime.verifier.recheck) == 1  # held, not recorded
    return writing


async def test_a_count_that_raced_a_write_is_rechecked_and_recorded_as_a_race(
        aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn)
    async with _watched(config) as (runtime, session, seen):
        writing = await _race(runtime, session, gate, inserted, seen)
        gate.set()
        await writing
        await _until(lambda: len(seen) == 2 and not len(runtime.verifier.recheck))
        async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as r:
            status = await r.json()
        await runtime.store.flush()
        signatures = await runtime.store.signatures(limit=10)
    [count] = [c for c in seen if c.exchange.route == "/feed"]
    assert (count.verdict, count.reason, count.differences) == (Verdict.MATCH, "race", ())
    assert count.normalised >= 1 and count.held > 0
    assert sample_value(runtime, RECHECKED, route="/feed", method="GET", outcome="race") == 1
    assert sample_value(runtime, "shadow_requests_total", route="/feed", method="GET",
                        verdict="mismatch") == 0
    assert signatures == []
    assert status["counts"]["rechecks"] == {
        "held": 0, "race": 1, "confirmed": 0, "unsettled": 0, "race_writes": 1, "raced": 0,
        "raced_why": {"resend_writes": 0, "policy": 0, "unsettled": 0}, "raced_writes": 0}
    assert status["counts"]["mismatches"] == 0


async def test_a_count_that_is_off_by_one_stays_a_mismatch_confirmed_by_the_recheck(
        aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn)
    async with _watched(config) as (runtime, session, seen):
        conn = await asyncpg.connect(pg_dsn)
        await conn.execute("INSERT INTO items (name) VALUES ('only on the candidate')")
        await conn.close()
        async with session.get(proxy_url(runtime, "/feed")) as r:   # no write beside it
            assert (await r.json()) == {"items": 0}
        await _until(lambda: len(seen) == 1)
        assert seen[0].verdict == Verdict.MISMATCH and seen[0].held == 0
        writing = await _race(runtime, session, gate, inserted, seen)
        gate.set()
        await writing
        await _until(lambda: len(seen) == 3 and not len(runtime.verifier.recheck))
        await runtime.store.flush()
        [signature] = [s for s in await runtime.store.signatures(limit=20)
                       if s["route"] == "/feed"]  # the write differs too: its id
        samples = await runtime.store.samples(signature=signature["signature"], limit=5)
    raced = [c for c in seen if c.exchange.route == "/feed"][1]
    assert raced.verdict == Verdict.MISMATCH and raced.held > 0 and raced.reason == ""
    assert signature["count"] == 2 and signature["path"] == "$.items"
    assert sample_value(runtime, RECHECKED, route="/feed", method="GET",
                        outcome="confirmed") == 1
    [plain, evidence] = [s["sample"].get("recheck") for s in reversed(samples)]
    assert plain is None                         # the first read overlapped no write
    assert evidence == {"outcome": "confirmed", "writes_overlapped": 1,
                        "differences": evidence["differences"]}
    assert [d["path"] for d in evidence["differences"]] == ["$.items"]
    page = sample_detail(samples[0])               # the browser's page of that sample
    assert "<h3>Rechecked: confirmed</h3><p>the read overlapped 1 write(s); sent again" in page
    assert page.count("<code>$.items</code>") == 2  # the difference, and the fresh one


async def test_a_read_whose_writes_never_stop_in_time_is_recorded_raced(
        aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn, raced_share=0.2,
                                         max_wait=0.2)
    async with _watched(config) as (runtime, session, seen):
        writing = await _race(runtime, session, gate, inserted, seen)
        await _until(lambda: len(seen) == 1)     # the write still runs: no quiet moment
        gate.set()
        await writing
        await _until(lambda: len(seen) == 2)
        async with session.get(admin_url(runtime, "/api/status"), headers=VIEWER) as r:
            status = await r.json()
        async with session.get(admin_url(runtime, "/signatures?kind=raced"),
                               headers=VIEWER) as r:
            assert r.status == 200 and ('<td>/feed</td><td>GET</td><td class="kind">raced'
                                        '</td>') in await r.text()
        async with session.get(admin_url(runtime, "/"), headers=VIEWER) as r:
            assert 'href="/signatures?kind=raced"' in await r.text()  # no finding: a link
        await runtime.store.flush()
        [sample] = await runtime.store.samples(route="/feed")
        mismatches = await runtime.store.signatures(not_kind="raced")
        [raced] = await runtime.store.signatures(kind="raced")
        findings = await runtime.store.rows("SELECT * FROM findings")
    [count] = [c for c in seen if c.exchange.route == "/feed"]
    assert count.verdict == Verdict.RACED and count.held > 0 and count.reason == "unsettled"
    assert count.differences                      # kept, not hidden
    assert sample["sample"]["verdict"] == "raced"
    assert sample["sample"]["recheck"] == {"outcome": "unsettled", "why": "busy",
                                           "writes_overlapped": 1}
    assert sample["sample"]["raced"] == {"why": "unsettled", "writes_overlapped": 1}
    page = sample_detail(sample)
    assert "recorded as it was: writes never stopped long enough" in page
    assert "<h3>Unverified: raced writes</h3><p>the replies differed while 1 write(s)" in page
    assert (raced["route"], raced["path"], raced["count"]) == ("/feed", "$.items", 1)
    assert mismatches == [] and findings == []
    assert sample_value(runtime, RECHECKED, route="/feed", method="GET",
                        outcome="unsettled") == 1
    assert sample_value(runtime, "shadow_recheck_unsettled_total", why="busy") == 1
    assert sample_value(runtime, "shadow_reads_raced_total", route="/feed", method="GET",
                        why="unsettled") == 1
    assert sample_value(runtime, "shadow_requests_total", route="/feed", method="GET",
                        verdict="mismatch") == 0
    gate_route = {r["route"]: r for r in status["gate"]["routes"]}["GET /feed"]
    assert (gate_route["compared"], gate_route["raced"]) == (PROVEN, 1)
    assert status["counts"]["raced"] == 1 and status["counts"]["rechecks"]["raced"] == 1
    assert "GET /feed: 1 of 4 exchanges raced writes (unverified), 25% > 20%" in \
        status["gate"]["reasons"]


async def test_held_reads_are_recorded_as_they_were_when_the_proxy_stops(
        aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn)
    async with _watched(config) as (runtime, session, seen):
        writing = await _race(runtime, session, gate, inserted, seen)
        runtime.verifier.recheck.flush()
        assert [c.verdict for c in seen] == [Verdict.RACED]
        gate.set()
        await writing
        await _until(lambda: len(seen) == 2)     # the write's own comparison
    assert sample_value(runtime, "shadow_recheck_unsettled_total", why="stopped") == 1
    assert [c.exchange.route for c in seen] == ["/feed", "/items"]  # the read: once


async def test_the_recheck_can_be_turned_off(aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn, enabled=False)
    async with _watched(config) as (runtime, session, seen):
        assert runtime.verifier.recheck is None
        writing = asyncio.create_task(session.post(proxy_url(runtime, "/items"),
                                                   json={"name": "x", "hold": "x"}))
        await inserted["x"].wait()
        async with session.get(proxy_url(runtime, "/feed")) as r:
            await r.read()
        await _until(lambda: len(seen) == 1)
        gate.set()
        (await writing).release()
    assert seen[0].verdict == Verdict.MISMATCH and seen[0].held == 0


async def test_counts_read_beside_concurrent_posts_leave_no_mismatch_on_a_faithful_pair(
        aiohttp_server, tmp_path, pg_dsn):
    """Three posts at once, held on the primary and let go one by one, two counts read
    before each is let go: every count differs from its copy on the shadow (which has all
    three rows already), every one is rechecked once the posts are over, and none is
    left a mismatch."""
    gates = {f"p{n}": asyncio.Event() for n in range(3)}
    inserted: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    config, _, _ = await build_pair(
        aiohttp_server, tmp_path, pg_dsn, noise={"share": 0},
        sides={"legacy": {"gates": gates}, "candidate": {"inserted": inserted}})
    async with _watched(config) as (runtime, session, seen):
        async def post(name: str) -> None:
            async with session.post(proxy_url(runtime, "/items"),
                                    json={"name": name, "hold": name}) as r:
                assert r.status == 201

        posts = [asyncio.create_task(post(name)) for name in gates]
        for name in gates:
            await inserted[name].wait()
        counts = []
        for post_task, gate in zip(posts, gates.values(), strict=True):
            for _ in range(2):
                async with session.get(proxy_url(runtime, "/feed")) as r:
                    counts.append((await r.json())["items"])
            gate.set()
            await post_task
        await _until(lambda: len(seen) == 9 and not len(runtime.verifier.recheck))
    assert counts == [0, 0, 1, 1, 2, 2]              # the shadow counted 3 each time
    assert [(c.exchange.route, c.differences) for c in seen if c.verdict != "match"] == []
    races = [c for c in seen if c.reason == "race"]
    assert len(races) == 6 and {c.exchange.route for c in races} == {"/feed"}
    assert sample_value(runtime, RECHECKED, route="/feed", method="GET", outcome="race") == 6


async def test_a_read_whose_builds_changed_roles_while_it_waited_is_not_sent_again(
        aiohttp_server, tmp_path, pg_dsn):
    config, gate, inserted = await _pair(aiohttp_server, tmp_path, pg_dsn)
    async with _watched(config) as (runtime, session, seen):
        writing = await _race(runtime, session, gate, inserted, seen)
        runtime.modes.set("legacy-only")             # the candidate is no shadow any more
        gate.set()
        await writing
        await _until(lambda: not len(runtime.verifier.recheck))
        await runtime.store.flush()
        [sample] = await runtime.store.samples(route="/feed")
    [count] = [c for c in seen if c.exchange.route == "/feed"]
    assert count.verdict == Verdict.RACED
    assert sample["sample"]["recheck"]["why"] == "mode"
    assert sample_value(runtime, "shadow_recheck_unsettled_total", why="mode") == 1
