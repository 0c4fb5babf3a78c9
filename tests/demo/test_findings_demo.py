"""The demo's bugs as findings, through the real proxy, the demo app pair and row
verification: each bug is one finding on each route it breaks, with the differences that
follow from it inside that finding, and reads broken by another finding's failed writes
are linked to it."""

from __future__ import annotations

import time

from shadow.demo.runner import demo_stack, settle
from shadow.demo.traffic import run_traffic
from shadow.findings import queries

BUGS = "insert_or_replace,lost_commit,date_arith,timestamp_render"


async def test_each_bug_is_one_finding_per_route_with_its_dependents_inside(pg_dsn, tmp_path):
    async with demo_stack(bugs=BUGS, dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        url = f"http://127.0.0.1:{runtime.proxy_port}"
        await run_traffic(url, users=4, requests=320, seed=11)
        await settle(runtime)
        await runtime.store.flush()
        rows, _ = await queries.listing(runtime.store, queries.Query(limit=500), time.time())
        # the builds' random values, learnt as drawn fresh per reply after a cold start
        fresh = {p["path"] for p in runtime.noise.fresh.listing() if p["hiding"]}
        assert {"$.csrf_token", "$.error_id"} <= fresh
        rows = [r for r in rows if r["what"] not in fresh]
        by_key = {r["key"]: r for r in rows}
        details = {r["key"]: await queries.one(runtime.store, r["id"], time.time()) for r in rows}
        signatures = len(await runtime.store.signatures(limit=10_000))

    def on(method_route: str) -> dict[str, dict]:
        return {k: v for k, v in by_key.items() if k.startswith(method_route + " ")}

    # insert_or_replace: one 500 on POST /api/moods, its missing rows inside it
    moods = on("POST /api/moods")
    failed = moods["POST /api/moods status 201→500"]
    inside = {s["signature"] for s in details[failed["key"]]["signatures"] if s["dependent"]}
    assert {"POST /api/moods row_missing moods[*]", "POST /api/moods row_missing points[*]",
            "POST /api/moods body $.error"} <= inside
    assert not any(v["kind"] == "row_missing" for v in moods.values()), sorted(moods)
    read_back = by_key.get("GET /api/moods/{id} status 200→404")
    if read_back is not None:
        assert failed["id"] in read_back["caused_by_ids"]

    # date_arith: the stats route is one finding, every body path inside it
    stats = on("GET /api/admin/stats")
    assert list(stats) == ["GET /api/admin/stats status 200→500"]
    assert stats["GET /api/admin/stats status 200→500"]["signature_count"] >= 5

    # lost_commit: the write that lost the row, and the reads linked to it
    lost = by_key["POST /api/journal row_missing journal_entries"]
    linked = [v for k, v in by_key.items() if lost["id"] in v["caused_by_ids"]]
    assert linked, "no read was linked to the lost commits"
    evidence = {c["evidence"] for v in linked for c in details[v["key"]]["caused_by"]}
    assert any("journal_entries key" in text for text in evidence), evidence

    # timestamp_render: one rendering finding per route, whatever fields it touches
    formats: dict[str, list[str]] = {}
    for v in by_key.values():
        if v["kind"] == "format":
            formats.setdefault(f"{v['method']} {v['route']}", []).append(v["what"])
    assert formats and all(len(whats) == 1 for whats in formats.values()), formats

    assert len(by_key) < signatures, "findings should fold signatures, not copy them"
