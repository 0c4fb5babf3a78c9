"""A listing ordered by id after overlapping inserts that each side numbered in another
order (legacy SQLite, candidate PostgreSQL, through the proxy).

Three POSTs are held on both builds until all three arrived on the primary, so they
overlap there; legacy inserts them as a, b, c and the candidate as the test says. A
GET /list that follows lists the names newest id first, with no id to read. Where the
candidate's keys crossed the primary's, its faithful listing shows the other order, for
good: that is no mismatch, the elements are put back at the primary's places and the
sample says so. A candidate that forgot `ORDER BY`, or lists wrong ids, is still caught.
"""

from __future__ import annotations

import aiohttp
import pytest

from shadow.rows.crossed import CROSSED
from tests.support import proxy_url, running, settle
from tests.writes.apps import build_pair
from tests.writes.test_group_ids import NAMES, Sides, overlapping_writes

pytestmark = pytest.mark.postgres


async def listed(aiohttp_server, tmp_path, pg_dsn, candidate_order, listing=("ordered",) * 2):
    """Overlapping POSTs of a, b, c (the candidate inserting them in `candidate_order`),
    then one GET /list (`listing`: how legacy and the candidate write it); returns the
    running proxy's runtime, the client's listing and the GET's comparison."""
    sides = Sides()
    config_sides = sides.config()
    for backend, how in zip(("legacy", "candidate"), listing, strict=True):
        config_sides[backend]["listing"] = how
    config, _, _ = await build_pair(aiohttp_server, tmp_path, pg_dsn, sides=config_sides)
    async with running(config) as runtime:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        await overlapping_writes(runtime, sides, candidate_order)
        await settle(runtime, len(NAMES))
        async with aiohttp.ClientSession() as session:
            async with session.get(proxy_url(runtime, "/list")) as reply:
                client = await reply.json()
        await settle(runtime, len(NAMES) + 1)
    (read,) = [c for c in seen if c.exchange.method == "GET"]
    return runtime, client, read


def crossed_metric(runtime) -> float:
    return runtime.metrics.registry.get_sample_value(
        "shadow_crossed_keys_total", {"route": "/list", "method": "GET", "table": "items"}) or 0.0


async def test_a_listing_of_crossed_rows_is_read_in_the_primary_order(
        aiohttp_server, tmp_path, pg_dsn):
    runtime, client, read = await listed(aiohttp_server, tmp_path, pg_dsn, ["c", "b", "a"])
    assert [e["name"] for e in client["items"]] == ["c", "b", "a"]  # the primary's reply
    shadow = read.shadow.reply.body.decode()
    assert shadow.index('"a"') < shadow.index('"c"')  # the candidate's own order differed
    assert read.verdict == "match" and read.reason == CROSSED and read.normalised >= 2
    moved = {(t.path, t.table, t.shadow, t.primary, t.source) for t in read.translated}
    assert moved == {("$.items[0]", "items", 2, 0, CROSSED), ("$.items[2]", "items", 0, 2, CROSSED)}
    assert crossed_metric(runtime) == 2
    sample = runtime.verifier.sample(read)
    assert {(t["path"], t["source"]) for t in sample["translated"]} == {
        ("$.items[0]", CROSSED), ("$.items[2]", CROSSED)}


async def test_a_listing_without_crossed_rows_is_compared_as_it_is(
        aiohttp_server, tmp_path, pg_dsn):
    runtime, _, read = await listed(aiohttp_server, tmp_path, pg_dsn, ["a", "b", "c"])
    assert read.verdict == "match" and read.reason == "" and not read.translated
    assert crossed_metric(runtime) == 0
    assert len(runtime.rows.crossings) == 0


@pytest.mark.parametrize(("candidate_order", "crossed"), [
    (["a", "b", "c"], 0),  # no crossing at all
    # a and b crossed (legacy a 1, b 2; candidate b 1, a 2): the candidate's table order
    # b, a, c is no order of its keys, so nothing is put back.
    (["b", "a", "c"], 1),
])
async def test_a_candidate_without_order_by_is_caught(aiohttp_server, tmp_path, pg_dsn,
                                                      candidate_order, crossed):
    runtime, _, read = await listed(aiohttp_server, tmp_path, pg_dsn, candidate_order,
                                    listing=("ordered", "unordered"))
    assert len(runtime.rows.crossings) == crossed
    assert read.verdict == "mismatch" and read.reason == "" and not read.translated
    assert {d.path for d in read.differences} >= {"$.items[0].name", "$.items[2].name"}
    assert crossed_metric(runtime) == 0


async def test_wrong_ids_in_a_listing_of_crossed_rows_are_still_caught(
        aiohttp_server, tmp_path, pg_dsn):
    runtime, _, read = await listed(aiohttp_server, tmp_path, pg_dsn, ["c", "b", "a"],
                                 listing=("ids", "wrong_ids"))
    assert read.verdict == "mismatch"
    assert {d.path for d in read.differences} == {"$.items[0].id", "$.items[1].id",
                                                  "$.items[2].id"}
    assert crossed_metric(runtime) == 2  # the names were put back; the ids stay wrong


async def test_right_ids_in_a_listing_of_crossed_rows_match(aiohttp_server, tmp_path, pg_dsn):
    _, client, read = await listed(aiohttp_server, tmp_path, pg_dsn, ["c", "b", "a"],
                                listing=("ids", "ids"))
    assert [(e["id"], e["name"]) for e in client["items"]] == [(3, "c"), (2, "b"), (1, "a")]
    assert read.verdict == "match" and read.reason == CROSSED
    assert CROSSED in {t.source for t in read.translated}
