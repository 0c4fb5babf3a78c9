"""The faithful demo port as `shadow demo --bugs none` drives it by default: six users in
four groups at once, the default pause, twenty seconds. Reads overlap writes on the
primary; a read that saw another subset of them there than its copy saw on the shadow is
rechecked once no write runs, and recorded as a race when both builds then agree.

What is held here: no shadow error; no recheck ever confirms a race on a faithful port
(both builds, asked again while no write runs, agree); every race recorded is a match
that was held for its recheck, and the metrics say the same as the summary. A read whose
recheck found no quiet moment within its wait (`unsettled`, why `busy`) is recorded
`raced`, unverified. Reads that write an audit row
(`shadow.demo.request_context.AUDITED_READS`) are never sent again, since a second send
would write a second audit row in production: they are `raced` when they differ beside
writes. `tests/demo/test_busy_machine.py` holds the mismatches of this traffic to zero;
rows are `tests/demo/test_crowd.py`'s to hold. A listing ordered by id (the inbox) after
two writes at once whose rows each build numbered in another order differs for good,
while no write runs; its elements are read in the primary's order (shadow.rows.crossed),
so no recheck is needed to settle it and none confirms it. Nor does a listing each build
sorted by its own clock (the badges, newest first to the second, ties by name), where a
second boundary fell between two awards on one side only (shadow.compare.clock_order).
"""

from __future__ import annotations

from shadow.demo.runner import THINK, DemoResult, collect, demo_stack
from shadow.demo.traffic import run_traffic
from shadow.recheck import OUTCOMES

DURATION = 20.0


async def test_the_default_crowd_on_a_faithful_port_has_no_race_confirmed_by_its_recheck(
        pg_dsn, tmp_path):
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        report = await run_traffic(f"http://127.0.0.1:{runtime.proxy_port}", users=6,
                                   duration=DURATION, seed=7, concurrency=4, think=THINK)
        assert report.errors == 0
        result = await collect(runtime, DemoResult(requests=report.requests), top=200)
        counted = {outcome: sum(
            runtime.metrics.registry.get_sample_value(
                "shadow_reads_rechecked_total",
                {"route": route, "method": "GET", "outcome": outcome}) or 0.0
            for route in {c.exchange.route for c in seen}) for outcome in OUTCOMES}
    assert not [r for r in result.verdicts.values() if r.get("shadow_error")], result.verdicts
    races = [c for c in seen if c.reason == "race"]
    assert all(c.verdict == "match" and c.held > 0 and c.normalised for c in races)
    assert counted == {o: float(n) for o, n in result.rechecks.items() if o in OUTCOMES}
    assert counted["race"] == len(races) and result.rechecks["held"] == 0
    assert counted["confirmed"] == 0, result.signatures
