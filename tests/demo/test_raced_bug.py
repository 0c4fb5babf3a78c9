"""A real bug on an audited aggregate read is still a mismatch under concurrent traffic.

`GET /api/admin/stats` writes an audit row, so it is never sent twice; when it overlaps
writes and its replies differ, the proxy cannot tell a race from a fault, and such a read
is `raced` (unverified). A candidate with `avg_decimal` (AVG serialised as the string
"6.50") differs on every read of that route that has an average: a value of another
JSON type is never raced, and the other differences of such a read (counts a race moved)
are a mismatch with it. The route never passes the gate.
"""

from __future__ import annotations

from shadow.demo.runner import THINK, USERS, DemoResult, collect, demo_stack, groups
from shadow.demo.traffic import run_traffic

ROUTE = "GET /api/admin/stats"


async def test_a_bug_on_an_audited_aggregate_read_is_reported_under_concurrent_traffic(
        pg_dsn, tmp_path):
    async with demo_stack(bugs="avg_decimal", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        report = await run_traffic(f"http://127.0.0.1:{runtime.proxy_port}", users=USERS,
                                   duration=12.0, seed=7, concurrency=groups(USERS),
                                   think=THINK)
        assert report.errors == 0
        result = await collect(runtime, DemoResult(requests=report.requests), top=50)
        gate = runtime.cutover.status()["gate"]
    stats = [c for c in seen if f"{c.exchange.method} {c.exchange.route}" == ROUTE]
    verdicts = [str(c.verdict) for c in stats]
    assert verdicts.count("mismatch") >= 5, verdicts
    assert verdicts.count("mismatch") > 4 * verdicts.count("raced"), verdicts
    assert f"{ROUTE} type number→string" in [f["key"] for f in result.findings], result.findings
    [route] = [r for r in gate["routes"] if r["route"] == ROUTE]
    assert route["mismatches"] == verdicts.count("mismatch") and route["compared_needed"] > 0
    assert any(reason.startswith(ROUTE) for reason in gate["reasons"]), gate["reasons"]
