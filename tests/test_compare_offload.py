"""Heavy comparisons run off the event loop: real worker processes, a real proxy.

The latency test compares one run with heavy replies that differ (a 2 MB listing in
another order: compared in the pool) with one whose heavy replies are equal, and asserts
that an unrelated endpoint's median latency is about the same (generous ratio; figures
from `python -m bench.compare_offload` are in the README)."""

from __future__ import annotations

import asyncio
import statistics

from bench.compare_offload import heavy_app, listing, ping_latencies
from shadow.compare import build_rules, compare_replies
from shadow.compare.offload import Offload
from shadow.verdict import Reply
from tests.support import make_config, proxy_url, running, sample_value, settle

JSON = (("Content-Type", "application/json"),)


async def test_offloaded_comparison_equals_the_inline_one_and_is_bounded():
    a, b = listing(2000), listing(2000, shuffled=True)
    primary, shadow = Reply(200, JSON, a, 0.0), Reply(200, JSON, b, 0.0)
    rules = build_rules()
    offload = Offload(inline_bytes=1024, workers=1, timeout=30.0, max_pending=1)
    results: list = []
    done = asyncio.Event()

    def finished(diff, reason):
        results.append((diff, reason))
        if len(results) == 2:
            done.set()

    try:
        assert offload.wants(primary, shadow) and not offload.wants(primary, primary)
        offload.submit(primary, shadow, rules, finished)
        offload.submit(primary, shadow, rules, finished)  # past max_pending: cut at once
        async with asyncio.timeout(60):
            await done.wait()
    finally:
        await offload.close()
    assert results[0] == (None, "compare_queue_full")
    diff, reason = results[1]
    assert reason == "" and diff == compare_replies(primary, shadow, rules)
    assert len(diff.differences) > 0


async def test_a_comparison_past_its_timeout_is_cut():
    a, b = listing(16_000), listing(16_000, shuffled=True)
    offload = Offload(inline_bytes=1024, workers=1, timeout=0.001, max_pending=4)
    got = asyncio.get_running_loop().create_future()
    try:
        offload.submit(Reply(200, JSON, a, 0.0), Reply(200, JSON, b, 0.0), build_rules(),
                       lambda diff, reason: got.set_result((diff, reason)))
        async with asyncio.timeout(60):
            assert await got == (None, "compare_timeout")
    finally:
        await offload.close()


async def ping_median(aiohttp_server, tmp_path, candidate_body: bytes, label: str) -> float:
    body = listing()
    legacy = await aiohttp_server(heavy_app(body))
    candidate = await aiohttp_server(heavy_app(candidate_body))
    (tmp_path / label).mkdir()
    config = make_config(tmp_path / label, str(legacy.make_url("")),
                         str(candidate.make_url("")),
                         routes=[{"template": "/big"}, {"template": "/ping"}])
    async with running(config) as runtime:
        timings, sent = await ping_latencies(proxy_url(runtime), 150)
        await settle(runtime, sent + 150, timeout=60)
        verdict = "mismatch" if candidate_body != body else "match"
        compared = sample_value(runtime, "shadow_requests_total", route="/big", method="GET",
                                verdict=verdict)
        cut = sum(sample_value(runtime, "shadow_skipped_total", route="/big", reason=reason)
                  for reason in ("compare_queue_full", "compare_timeout"))
        assert compared > 0 and compared + cut == sent  # a busy pool cuts, and counts it
    return statistics.median(timings)


async def test_heavy_mismatching_replies_cost_clients_what_heavy_matching_ones_do(
        aiohttp_server, tmp_path):
    matching = await ping_median(aiohttp_server, tmp_path, listing(), "match")
    mismatching = await ping_median(aiohttp_server, tmp_path, listing(shuffled=True), "mismatch")
    assert mismatching < 3 * matching + 0.002, (matching, mismatching)


async def test_a_pool_that_cannot_run_the_comparison_still_concludes_it():
    """Whatever stops the pool (here: an executor already shut down), `done` is called,
    so the exchange is published (skipped) and the failure goes to `raised`."""
    raised, got = [], asyncio.get_running_loop().create_future()
    offload = Offload(inline_bytes=1, workers=1, raised=lambda op, exc: raised.append(op))
    pool = offload._ensure_pool()
    pool.shutdown(wait=True)
    try:
        offload.submit(Reply(200, JSON, b"[1]", 0.0), Reply(200, JSON, b"[2]", 0.0),
                       build_rules(), lambda diff, reason: got.set_result((diff, reason)))
        async with asyncio.timeout(30):
            assert await got == (None, "compare_failed")
    finally:
        await offload.close()
    assert raised == ["compare_offload"]


async def test_a_heavy_mismatch_keeps_its_differences_but_not_its_bodies(tmp_path):
    """Shaping a 1 MB body on the loop would hold every client for a second: the sample
    keeps a short note instead (stored as text: its size and fingerprint), and the
    differences."""
    from shadow.metrics import Metrics
    from shadow.privacy import SampleBuilder
    from shadow.privacy.fingerprint import Fingerprinter
    from shadow.privacy.keep import KeepRules
    from shadow.privacy.shapes import Shaper
    from shadow.routes import RoutePolicy
    from shadow.store import Store
    from shadow.verdict import Exchange
    from shadow.privacy.sample import SAMPLE_BODY_BYTES
    from shadow.verifier import Verifier

    store = await Store.open(str(tmp_path / "state.db"), flush_interval=3600)
    try:
        privacy = SampleBuilder(Shaper(KeepRules.compile([]), Fingerprinter(b"k" * 32)))
        verifier = Verifier(metrics=Metrics(), store=store, privacy=privacy,
                            rules=build_rules(), labels={}, raised=lambda op, exc: None)
        exchange = Exchange("t-1", "GET", "/big", "/big", (), b"", 0.0)
        pair = verifier.pair(exchange, RoutePolicy(template="/big"), "legacy", "candidate")
        a, b = listing(), listing(shuffled=True)
        pair.primary, pair.shadow = Reply(200, JSON, a, 0.0), Reply(200, JSON, b, 0.0)
        comparison = verifier.conclude(pair, compare_replies(pair.primary, pair.shadow))
        await store.flush()
        [kept] = await store.samples()
    finally:
        await store.close()
    sample = kept["sample"]
    note = f"[{len(a)} bytes: not kept, over {SAMPLE_BODY_BYTES}]"
    assert sample["primary"]["body"]["form"] == "text"
    assert sample["primary"]["body"]["bytes"] == len(note) < SAMPLE_BODY_BYTES
    assert sample["shadow"]["body"]["bytes"] < SAMPLE_BODY_BYTES
    assert len(sample["differences"]) == len(comparison.differences) > 0
