"""A list each build sorts by its own clock, through a real proxy.

Two builds of a badge service stamp each badge with their own "now", kept to the second,
and list badges newest first, ties by name (`ORDER BY earned_at DESC, name`). Two badges
the primary stamps within one second are listed by name there; the shadow replays the
second one over a second later, so it lists that one first. Both are right: no mismatch.
A candidate that breaks ties another way, or lists oldest first, is still caught.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from tests.support import make_config, running, settle

LATE = 1.4
"""Seconds the shadow takes over the second badge: past the boundary of its second."""
ATTEMPTS = 3
"""A busy machine may split the primary's two writes over a boundary too; try again."""

BADGES = web.AppKey("badges", list)


def badge_app(*, delays: dict[str, float], order: str) -> web.Application:
    """A build that keeps its badges in memory. `delays`: seconds it takes over a badge by
    name; `order`: "faithful" (newest first, ties by name), "ties_reversed" (ties by name
    descending) or "oldest_first"."""
    app = web.Application()
    app[BADGES] = []

    async def earn(request: web.Request) -> web.Response:
        name = (await request.json())["name"]
        await asyncio.sleep(delays.get(name, 0.0))
        row = {"name": name, "earned_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        request.app[BADGES].append(row)
        return web.json_response(row, status=201)

    async def listing(request: web.Request) -> web.Response:
        rows = list(request.app[BADGES])
        if order == "oldest_first":
            rows.sort(key=lambda r: (r["earned_at"], r["name"]))
        else:
            rows.sort(key=lambda r: r["name"], reverse=order == "ties_reversed")
            rows.sort(key=lambda r: r["earned_at"], reverse=True)
        return web.json_response({"badges": rows})

    app.router.add_post("/badges", earn)
    app.router.add_get("/badges", listing)
    return app


def _fresh(tmp_path, attempt: int):
    """A state directory of its own for each attempt."""
    path = tmp_path / f"attempt-{attempt}"
    path.mkdir()
    return path


async def _start_of_a_second() -> None:
    await asyncio.sleep(1.02 - time.time() % 1.0)


async def listed(aiohttp_server, tmp_path, *, late: float, order: str, apart: float):
    """Badges `a` and `b` earned `apart` seconds apart through the proxy from the start of
    a second, the shadow taking `late` seconds over `b`; then the list read once. Returns
    (the primary's stamps of a and b, the list's comparison)."""
    legacy = await aiohttp_server(badge_app(delays={}, order="faithful"))
    candidate = await aiohttp_server(badge_app(delays={"b": late}, order=order))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        comparisons = []
        runtime.verifier.listeners.append(comparisons.append)
        base = f"http://127.0.0.1:{runtime.proxy_port}"
        await _start_of_a_second()
        stamps = []
        for name in ("a", "b"):
            async with http.post(base + "/badges", json={"name": name}) as reply:
                stamps.append((await reply.json())["earned_at"])
            await asyncio.sleep(apart)
        await settle(runtime, 2, timeout=10 + late)
        async with http.get(base + "/badges") as reply:
            assert reply.status == 200
        await settle(runtime, 3, timeout=10)
    writes, (listing,) = comparisons[:2], comparisons[2:]
    assert [c.verdict for c in writes] == ["match", "match"], [c.differences for c in writes]
    return stamps, listing


async def test_a_second_boundary_on_the_shadow_only_is_no_mismatch(aiohttp_server, tmp_path):
    for attempt in range(ATTEMPTS):
        stamps, listing = await listed(aiohttp_server, _fresh(tmp_path, attempt), late=LATE,
                                       order="faithful", apart=0.0)
        if stamps[0] == stamps[1]:
            break
    else:
        pytest.fail(f"the primary never stamped two writes in one second: {stamps}")
    assert listing.verdict == "match", [(d.path, d.primary, d.shadow)
                                        for d in listing.differences]
    assert listing.normalised >= 1


def _seconds(listing) -> set[str]:
    """The distinct stamps of the shadow's listing."""
    return {row["earned_at"] for row in json.loads(listing.shadow.reply.body)["badges"]}


@pytest.mark.parametrize(("order", "apart", "path"), [
    ("ties_reversed", 0.0, "$.badges[0].name"),   # one second on both sides, other order
    ("oldest_first", 1.0, "$.badges[0].name"),    # two seconds on both sides, reversed
])
async def test_a_real_order_bug_is_still_caught(aiohttp_server, tmp_path, order, apart, path):
    for attempt in range(ATTEMPTS):
        stamps, listing = await listed(aiohttp_server, _fresh(tmp_path, attempt), late=0.0,
                                       order=order, apart=apart)
        # a tie must be a tie on both sides: a stall that split the two writes over a
        # boundary on one side only is the clocks' case, not this one
        if order != "ties_reversed" or (stamps[0] == stamps[1] and len(_seconds(listing)) == 1):
            break
    else:
        pytest.fail(f"the two writes never fell in one second on both sides: {stamps}")
    assert listing.verdict == "mismatch"
    assert path in {d.path for d in listing.differences}, listing.differences
