"""The faithful demo port as `shadow demo --bugs none` drives it by default: six users in
four groups at once, the default pause, twenty seconds. Reads overlap writes on the
primary; a read that saw another subset of them there than its copy saw on the shadow is
rechecked once no write runs, and recorded as a race when both builds then agree.

What is held to zero here: shadow errors, and reply differences on reads that write no
row (counts, listings, inboxes: every one of them may be sent again). Reads that write an
audit row (`AUDITED_READS`: the admin statistics and audit summary, a journal entry) are
never sent again, since a second send would write a second audit row in production, so a
race of theirs is still reported as a mismatch (see the README's *Reads that raced
writes*); rows are `tests/demo/test_crowd.py`'s to hold.
"""

from __future__ import annotations

from shadow.demo.request_context import AUDITED_READS
from shadow.demo.runner import THINK, DemoResult, collect, demo_stack
from shadow.demo.traffic import run_traffic
from shadow.recheck import OUTCOMES

DURATION = 20.0


async def test_the_default_crowd_on_a_faithful_port_leaves_no_race_on_a_read_that_writes_nothing(
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
    replies = [(s["method"], s["route"], s["kind"], s["path"]) for s in result.signatures
               if not s["kind"].startswith("row_")
               and f"{s['method']} {s['route']}" not in AUDITED_READS]
    assert replies == []
    assert not [r for r in result.verdicts.values() if r.get("shadow_error")], result.verdicts
    races = [c for c in seen if c.reason == "race"]
    assert all(c.verdict == "match" and c.held > 0 and c.normalised for c in races)
    assert counted == {o: float(n) for o, n in result.rechecks.items() if o in OUTCOMES}
    assert counted["race"] == len(races) and result.rechecks["held"] == 0
    assert counted["confirmed"] == 0, result.signatures
