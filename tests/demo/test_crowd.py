"""Twelve users in four groups at once, as `shadow demo --users 12` sends them, on the
demo pair with no bug: writes overlap on the primary (they are compared as groups, and
take their ids in another order on each side), reads that write overlap them, and yet no
row differs. What a read saw of a write that overlapped it on the primary is a race the
shadow cannot replay (see the README's list of what the faithful demo still shows), so
replies are left to the other demo tests; rows are what this one holds to zero."""

from __future__ import annotations

from shadow.demo.runner import DemoResult, collect, demo_stack
from shadow.demo.traffic import run_traffic

DURATION = 12.0


async def test_twelve_users_at_once_on_a_faithful_port_write_no_differing_row(pg_dsn, tmp_path):
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        url = f"http://127.0.0.1:{runtime.proxy_port}"
        report = await run_traffic(url, users=12, duration=DURATION, seed=3, concurrency=4,
                                   think=0.05)
        assert report.errors == 0
        result = await collect(runtime, DemoResult(requests=report.requests), top=200)
        writes = runtime.cutover.status()["writes"]
    rows = [(s["count"], s["method"], s["route"], s["kind"], s["path"])
            for s in result.signatures if s["kind"].startswith("row_")]
    assert result.rows == {} and rows == [], rows
    assert runtime.rows.diverged is None, runtime.rows.diverged
    errors = {route: row["shadow_error"] for route, row in result.verdicts.items()
              if row.get("shadow_error")}
    assert errors == {}
    unverified = [c.reason for c in seen if c.reason.startswith("rows")]
    assert unverified == [], unverified  # every exchange's rows were compared
    assert len(seen) >= 200 and writes["writes_grouped"] > 0 and writes["pairs_learnt_early"] > 0, writes
