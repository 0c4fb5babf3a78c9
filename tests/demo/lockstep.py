"""Run the traffic generator against two builds in step, and compare what came back.

Two generators with the same seed, one per build, wait for each other after every
request, so request i of one run and request i of the other are sent at about the same
moment and timestamps written by them agree to within a second or so.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import datetime
from typing import Any

import orjson

from shadow.demo.traffic import Call, run_traffic

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
RANDOM = {"error_id": re.compile(r"^[0-9a-f]{12}$"),
          "csrf_token": re.compile(r"^[A-Za-z0-9_-]{16}\.\d+\.[A-Za-z0-9_-]{43}$")}
"""Keys whose values each build draws at random on every reply: equal when both are
well-formed, whatever they hold."""


def _random_alike(key: str, a: Any, b: Any) -> bool:
    pattern = RANDOM[key]
    return isinstance(a, str) and isinstance(b, str) and bool(
        pattern.match(a) and pattern.match(b))


async def run_in_step(url_a: str, url_b: str, *, users: int, requests: int,
                      seed: int) -> tuple[list[Call], list[Call]]:
    """The calls of two runs with the same seed, one against each URL."""
    barrier = asyncio.Barrier(2)
    calls: tuple[list[Call], list[Call]] = ([], [])

    def recorder(side: int):
        async def record(call: Call) -> None:
            calls[side].append(call)
            async with asyncio.timeout(30):
                await barrier.wait()
        return record

    async with asyncio.timeout(180), asyncio.TaskGroup() as group:
        for side, url in enumerate((url_a, url_b)):
            group.create_task(run_traffic(url, users=users, requests=requests, seed=seed,
                                          on_progress=recorder(side)))
    return calls


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            _random_alike(k, a[k], b[k]) if k in RANDOM else _same(a[k], b[k], tolerance)
            for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, str) and a != b and _TIMESTAMP.match(a) and _TIMESTAMP.match(b):
        gap = datetime.fromisoformat(a) - datetime.fromisoformat(b)
        return abs(gap.total_seconds()) <= tolerance
    return a == b


def same_body(a: bytes, b: bytes, tolerance: float = 2.0) -> bool:
    """Same bytes, or the same JSON except SQLite-style timestamps that are at most
    `tolerance` seconds apart and the random values of `RANDOM`."""
    if a == b:
        return True
    try:
        return _same(orjson.loads(a), orjson.loads(b), tolerance)
    except orjson.JSONDecodeError:
        return False


def same_reply(a: Call, b: Call, tolerance: float = 2.0) -> bool:
    """Same status, Set-Cookie and body (as in `same_body`)."""
    return (a.status, a.set_cookie) == (b.status, b.set_cookie) and same_body(
        a.reply, b.reply, tolerance)


def differing_routes(calls_a: list[Call], calls_b: list[Call]) -> Counter[str]:
    """Route key -> number of calls whose replies differ; the runs must be aligned
    (same number of calls, same method and route at every position)."""
    assert len(calls_a) == len(calls_b)
    differing: Counter[str] = Counter()
    for a, b in zip(calls_a, calls_b):
        assert (a.index, a.key) == (b.index, b.key), (a, b)
        if not same_reply(a, b):
            differing[a.key] += 1
    return differing
