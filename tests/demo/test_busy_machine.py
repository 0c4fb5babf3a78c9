"""The demo pair with no bug, on a busy machine: no mismatch with no rule written.

Beside the proxy and both builds run CPU-burning processes, one per core, so the shadow
replays each write later than the primary served it (the client waits for the primary
only) and every "now" each build stamps differs by that lag. The demo's config holds no
timestamp tolerance and no ignore rule: timestamps are compared by meaning, salted
password hashes by scheme. Nothing is left out: audit rows that reads write are
attributed to those reads, and the random `$.error_id` and `$.csrf_token`, learnt as
values drawn fresh per reply with the comparisons of their cold start held until then,
show no mismatch at all. The replay-lag metric, read from /metrics while the traffic
runs, shows how far behind the shadow was.

The second test runs the traffic as `shadow demo --bugs none` sends it by default (its
users, groups at once, pause and duration): reads then overlap writes, and a read that saw
another subset of them than its copy did on the shadow, which the proxy cannot settle
(an audited read, a recheck with no quiet moment), is `raced`, unverified: never a
mismatch, never a match. No mismatch and no row difference is allowed. What made it fail
now and then before is settled: audit summaries that drifted (an audited read sent again
by the proxy on its own), sequence keys of overlapping inserts whose rows crossed between
burnt values (`achievements[*].id`, shadow.rows.sequences), listings ordered by id after
such inserts (the inbox, shadow.rows.crossed), and the badges listing each build sorted by
its own clock to the second (shadow.compare.clock_order). Two others seen only before
those parts were combined (audit rows of two overlapping groups that took each other's
key; a `points[*].points` total in a group of overlapping writes) were not traced, and
have not shown since. See the README's faithful-port section for the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import aiohttp

from shadow.demo.commands import demo
from shadow.demo.runner import (DURATION, THINK, USERS, DemoResult, collect, demo_stack,
                                groups, settle)
from shadow.demo.traffic import run_traffic
from shadow.recheck import RACED_WHY

REQUESTS = 300
BURN = "import time\nend = time.time() + 300\nwhile time.time() < end:\n    pass\n"
"""A busy loop that ends by itself after five minutes should the test be killed."""


@contextlib.contextmanager
def burning() -> Iterator[None]:
    """One CPU-burning process per core while the block runs, each stopped by its PID."""
    burners: list[subprocess.Popen] = []
    try:
        burners = [subprocess.Popen([sys.executable, "-c", BURN])
                   for _ in range(os.cpu_count() or 2)]
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def lag_in(exposition: str) -> float:
    for line in exposition.splitlines():
        if line.startswith("shadow_replay_lag_seconds "):
            return float(line.split()[1])
    raise AssertionError("shadow_replay_lag_seconds is not exposed")


async def test_a_faithful_port_beside_a_busy_loop_gives_zero_mismatches(pg_dsn, tmp_path):
    lags: list[float] = []
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        assert not runtime.config.compare.time_tolerance
        assert not runtime.config.rows.columns
        metrics = f"http://127.0.0.1:{runtime.admin_port}/metrics"

        async def watch(http: aiohttp.ClientSession) -> None:
            while True:
                async with http.get(metrics) as reply:
                    lags.append(lag_in(await reply.text()))
                await asyncio.sleep(0.2)

        with burning():
            async with aiohttp.ClientSession() as http:
                watcher = asyncio.ensure_future(watch(http))
                try:
                    report = await run_traffic(f"http://127.0.0.1:{runtime.proxy_port}",
                                               users=6, requests=REQUESTS, seed=7)
                    await settle(runtime, 120)
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
            assert report.errors == 0
            result = await collect(runtime, DemoResult(requests=report.requests), top=20)
    assert result.signatures == [], [(s["method"], s["route"], s["kind"], s["path"])
                                     for s in result.signatures]
    assert not [r for r in result.verdicts.values() if r.get("shadow_error")], result.verdicts
    learnt = {p["path"]: p["hidden"] for p in result.fresh if p["hiding"]}
    assert learnt.keys() >= {"$.csrf_token", "$.error_id"}, result.fresh
    assert all(learnt[path] > 0 for path in ("$.csrf_token", "$.error_id")), learnt
    assert result.rows == {}
    compared = sum(row.get("match", 0) + row.get("mismatch", 0)
                   for row in result.verdicts.values())
    assert compared >= REQUESTS - 10, result.verdicts
    assert lags and max(lags) > 0, lags


async def test_the_default_demo_beside_a_busy_loop_gives_no_mismatch_and_no_row_difference(
        pg_dsn, tmp_path):
    defaults = {p.name: p.default for p in demo.params}
    assert (defaults["users"], defaults["duration"], defaults["think"]) == (USERS, DURATION, None)
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        with burning():
            report = await run_traffic(f"http://127.0.0.1:{runtime.proxy_port}", users=USERS,
                                       duration=DURATION, seed=7, concurrency=groups(USERS),
                                       think=THINK)
            assert report.errors == 0
            result = await collect(runtime, DemoResult(requests=report.requests), top=50)
        status = runtime.cutover.status()
    mismatches = {route: row["mismatch"] for route, row in result.verdicts.items()
                  if row.get("mismatch")}
    assert mismatches == {}, ([(s["method"], s["route"], s["kind"], s["path"])
                               for s in result.signatures], mismatches)
    assert result.signatures == [] and result.rows == {}
    assert not [r for r in result.verdicts.values() if r.get("shadow_error")], result.verdicts
    raced = [c for c in seen if c.verdict == "raced"]
    assert all(c.exchange.method == "GET" and c.reason in RACED_WHY and c.differences
               and not any(str(d.kind).startswith("row_") for d in c.differences)
               for c in raced)
    assert status["counts"]["raced"] == len(raced) == result.rechecks["raced"]
    compared = sum(row.get("match", 0) for row in result.verdicts.values())
    assert compared >= 300 and len(raced) * 20 < compared, (compared, len(raced))
