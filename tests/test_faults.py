"""The fault matrix: each way a backend can misbehave, on the shadow side and on the primary
side, against real misbehaving servers on loopback (tests/faults.py).

For every cell: what the client receives (exactly the primary's reply while the primary is
healthy; 502/504 with a JSON body, within the configured timeout, when it is not), what is
counted (verdict, upstream error class, drops), that the client is not delayed by a bad
shadow (latency compared with the healthy phase of the same run), that no task or socket is
left behind, and that the proxy serves again once the backend recovers.

`SHADOW_WRITE_FAULT_TABLE=1` writes the results to docs/fault-matrix.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.faults import (
    HEALTHY_BODY,
    HUGE,
    SLOW_DELAY,
    Misbehaving,
    RssSampler,
    healthy_app,
    huge_digest,
    open_sockets,
    rss,
    settled,
    task_count,
)
from tests.support import make_config, proxy_url, running, sample_value, settle

FAULTS = ("refuse", "hang", "slow", "reset", "reset_stream", "garbage", "huge", "error500")
SIDES = ("shadow", "primary")
DESCRIBE = {
    "refuse": "refuses connections (closed port)",
    "hang": "accepts, never answers",
    "slow": f"answers after {SLOW_DELAY:g} s",
    "reset": "resets mid-body (sized reply)",
    "reset_stream": "resets mid-body (chunked reply)",
    "garbage": "sends invalid HTTP",
    "huge": "sends a 100 MB body (streamed)",
    "error500": "answers 500 to everything",
}
TIMEOUT = 1.0           # mirror.timeout and proxy.primary_timeout
MAX_REPLY = 256 << 10   # mirror.max_reply_bytes: the most of a reply kept for comparing
ROUTE = "/api/items"
N_SHADOW = 8            # sequential requests while the shadow misbehaves
N_PRIMARY = 3           # concurrent requests while the primary misbehaves
LATENCY_RATIO = 5.0     # a bad shadow may not make the median client latency this much worse
TABLE = Path(__file__).resolve().parent.parent / "docs" / "fault-matrix.md"


@dataclass(frozen=True)
class Expect:
    status: int | None     # what the client gets; None: the head, then the connection is cut
    error_body: str | None  # the "error" field of the proxy's own JSON body (502/504)
    verdict: str
    error: str | None      # the upstream error class counted, if any
    client: str            # for the table


_SAME = "the primary's reply, byte for byte"
EXPECT: dict[tuple[str, str], Expect] = {
    ("refuse", "shadow"): Expect(200, None, "shadow_error", "connect", f"200, {_SAME}"),
    ("hang", "shadow"): Expect(200, None, "shadow_error", "timeout", f"200, {_SAME}"),
    ("slow", "shadow"): Expect(200, None, "shadow_error", "timeout", f"200, {_SAME}"),
    ("reset", "shadow"): Expect(200, None, "shadow_error", "protocol", f"200, {_SAME}"),
    ("reset_stream", "shadow"): Expect(200, None, "shadow_error", "protocol", f"200, {_SAME}"),
    ("garbage", "shadow"): Expect(200, None, "shadow_error", "protocol", f"200, {_SAME}"),
    ("huge", "shadow"): Expect(200, None, "skipped", "too_large", f"200, {_SAME}"),
    ("error500", "shadow"): Expect(200, None, "mismatch", None, f"200, {_SAME}"),
    ("refuse", "primary"): Expect(502, "primary_connect", "primary_error", "connect",
                                  "502 `primary_connect`"),
    ("hang", "primary"): Expect(504, "primary_timeout", "primary_error", "timeout",
                                "504 `primary_timeout` after primary_timeout"),
    ("slow", "primary"): Expect(504, "primary_timeout", "primary_error", "timeout",
                                "504 `primary_timeout` after primary_timeout"),
    ("reset", "primary"): Expect(502, "primary_protocol", "primary_error", "protocol",
                                 "502 `primary_protocol`"),
    ("reset_stream", "primary"): Expect(None, None, "primary_error", "protocol",
                                        "200 head and the lines sent, then a TCP reset "
                                        "(never a clean end: HTTP/1.0 clients see the cut "
                                        "too)"),
    ("garbage", "primary"): Expect(502, "primary_protocol", "primary_error", "protocol",
                                   "502 `primary_protocol`"),
    ("huge", "primary"): Expect(200, None, "skipped", "too_large",
                                "200, all 100 MB streamed, byte for byte"),
    ("error500", "primary"): Expect(500, None, "mismatch", None, f"500, {_SAME}"),
}


@pytest.fixture(scope="module")
def matrix():
    """Rows of the fault matrix, written to docs/fault-matrix.md when asked."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    yield rows
    if os.environ.get("SHADOW_WRITE_FAULT_TABLE") == "1" and rows:
        TABLE.parent.mkdir(exist_ok=True)
        TABLE.write_text(render_table(rows))


def render_table(rows: dict[tuple[str, str], dict[str, str]]) -> str:
    lines = [
        "# Fault matrix",
        "",
        "Generated by `SHADOW_WRITE_FAULT_TABLE=1 pytest tests/test_faults.py` against real",
        "misbehaving servers on loopback (tests/faults.py), with `mirror.timeout` and",
        f"`proxy.primary_timeout` = {TIMEOUT:g} s and `mirror.max_reply_bytes` = {MAX_REPLY} bytes.",
        "\"Side\" is the backend that misbehaves; the other one is healthy. In every row the",
        "proxy leaves no task or connection behind and serves normally once the backend recovers.",
        "",
        "| Fault | Side | Client got | Counted as |",
        "|---|---|---|---|",
    ]
    for fault in FAULTS:
        for side in SIDES:
            row = rows.get((fault, side))
            if row is not None:
                lines.append(f"| {DESCRIBE[fault]} | {side} | {row['client']} | {row['counted']} |")
    return "\n".join(lines) + "\n"


def _dropped(runtime) -> float:
    return sum(s.value for metric in runtime.metrics.registry.collect()
               if metric.name == "shadow_mirror_dropped" for s in metric.samples
               if s.name == "shadow_mirror_dropped_total")


def _errors(runtime) -> dict[tuple[str, str, str], float]:
    return {(s.labels["backend"], s.labels["role"], s.labels["error"]): s.value
            for metric in runtime.metrics.registry.collect()
            if metric.name == "shadow_upstream_errors" for s in metric.samples
            if s.name == "shadow_upstream_errors_total" and s.value}


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, str, float]:
    started = time.perf_counter()
    async with session.get(url) as resp:
        body = await resp.read()
        return resp.status, body, resp.headers.get("Content-Type", ""), time.perf_counter() - started


async def _phase(session, runtime, side: str, n: int) -> list[float]:
    """The request pattern of one side: sequential (shadow side, to time each one) or
    concurrent (primary side). Returns each request's latency."""
    url = proxy_url(runtime, ROUTE)
    if side == "shadow":
        out = []
        for _ in range(n):
            status, body, _, elapsed = await _get(session, url)
            assert (status, body) == (200, HEALTHY_BODY)
            out.append(elapsed)
        return out
    replies = await asyncio.gather(*(_get(session, url) for _ in range(n)))
    assert all((status, body) == (200, HEALTHY_BODY) for status, body, _, _ in replies)
    return [elapsed for *_, elapsed in replies]


async def _huge_through(session, url: str) -> tuple[int, int, str]:
    async with session.get(url) as resp:
        digest, size = hashlib.sha256(), 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        return resp.status, size, digest.hexdigest()


@pytest.fixture(scope="module")
def huge_sha256() -> str:
    return huge_digest()


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault(fault, side, tmp_path, matrix, huge_sha256):
    expect = EXPECT[fault, side]
    healthy = TestServer(healthy_app(), host="127.0.0.1")
    await healthy.start_server()
    bad = await Misbehaving.start(fault)
    healthy_url = str(healthy.make_url("")).rstrip("/")
    legacy, candidate = (healthy_url, bad.url) if side == "shadow" else (bad.url, healthy_url)
    bad_name = "candidate" if side == "shadow" else "legacy"
    n = N_SHADOW if side == "shadow" else (1 if fault == "huge" else N_PRIMARY)
    config = make_config(tmp_path, legacy, candidate,
                         mirror={"timeout": TIMEOUT, "max_reply_bytes": MAX_REPLY},
                         proxy={"primary_timeout": TIMEOUT, "connect_timeout": TIMEOUT},
                         routes=[{"template": ROUTE}])
    try:
        async with running(config) as runtime:
            # Healthy phase: the same request pattern, so pools reach their usual size
            # and the latency of the healthy case is known.
            async with aiohttp.ClientSession() as session:
                healthy_latency = await _phase(session, runtime, side, n)
            await settle(runtime, n)
            assert sample_value(runtime, "shadow_requests_total", route=ROUTE, method="GET",
                                verdict="match") == n
            await asyncio.sleep(0.1)
            tasks_before, sockets_before = task_count(), len(open_sockets())
            rss_before = rss()

            await bad.break_()
            with RssSampler() as memory:
                async with aiohttp.ClientSession(auto_decompress=False) as session:
                    got = await _faulty_phase(session, runtime, fault, side, n, expect,
                                              huge_sha256)
                await settle(runtime, 2 * n, timeout=TIMEOUT * 5)
            if side == "shadow":
                # The client never waits for the shadow: its latency stays that of the
                # healthy phase, far from the shadow's timeout (let alone SLOW_DELAY).
                assert statistics.median(got) < LATENCY_RATIO * statistics.median(healthy_latency), \
                    (got, healthy_latency)
                assert max(got) < TIMEOUT / 2, got
            if fault == "huge":
                # Only up to max_reply_bytes of the 100 MB is ever kept, on either side.
                assert memory.peak - rss_before < HUGE / 4, (memory.peak - rss_before) / 1e6

            verdicts = {v: sample_value(runtime, "shadow_requests_total", route=ROUTE,
                                        method="GET", verdict=v)
                        for v in ("match", "mismatch", "shadow_error", "primary_error", "skipped")}
            want = {v: 0.0 for v in verdicts}
            want["match"] = n
            want[expect.verdict] += n
            assert verdicts == want
            errors = _errors(runtime)
            role = "shadow" if side == "shadow" else "primary"
            assert errors == ({(bad_name, role, expect.error): n} if expect.error else {})
            assert _dropped(runtime) == 0
            assert sample_value(runtime, "shadow_internal_errors_total") == 0

            # The backend recovers: the proxy serves it again at once.
            await bad.heal()
            async with aiohttp.ClientSession() as session:
                status, body, _, _ = await _get(session, proxy_url(runtime, ROUTE))
            assert (status, body) == (200, HEALTHY_BODY)
            await settle(runtime, 2 * n + 1)
            assert sample_value(runtime, "shadow_requests_total", route=ROUTE, method="GET",
                                verdict="match") == n + 1

            tasks, sockets = await settled(tasks_before, sockets_before)
            assert tasks <= tasks_before, [t.get_name() for t in asyncio.all_tasks()]
            assert len(sockets) <= sockets_before, sockets
            assert not [s for s in sockets if s.status == "CLOSE_WAIT"], sockets
    finally:
        await bad.close()
        await healthy.close()

    counted = [f"verdict `{expect.verdict}`" + (" (`body_too_large`)" if fault == "huge" else "")]
    counted.append(f"upstream error `{expect.error}` ({bad_name}, {role})" if expect.error
                   else "no upstream error")
    counted.append("dropped 0")
    matrix[fault, side] = {"client": expect.client, "counted": "; ".join(counted)}


async def _faulty_phase(session, runtime, fault: str, side: str, n: int, expect: Expect,
                        huge_sha256: str) -> list[float]:
    """Send the fault phase's requests and check what the client got; return latencies."""
    url = proxy_url(runtime, ROUTE)
    if side == "shadow":
        return await _phase(session, runtime, side, n)
    if fault == "huge":
        assert await _huge_through(session, url) == (200, HUGE, huge_sha256)
        return []
    if expect.status is None:  # the head went out before the primary failed
        for _ in range(n):
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.get(url) as resp:
                    assert resp.status == 200
                    await resp.read()
        return []
    replies = await asyncio.gather(*(_get(session, url) for _ in range(n)))
    for status, body, ctype, elapsed in replies:
        assert status == expect.status
        if expect.error_body is not None:
            assert ctype == "application/json"
            assert json.loads(body)["error"] == expect.error_body
        if status == 504:
            # Within the configured timeout: not before it, and long before the primary.
            assert TIMEOUT * 0.9 <= elapsed < SLOW_DELAY / 2, elapsed
    if fault == "error500":
        async with aiohttp.ClientSession() as direct:
            status, body, ctype, _ = await _get(direct, str(runtime.upstreams["legacy"].url(ROUTE)))
        assert {(s, b, c) for s, b, c, _ in replies} == {(status, body, ctype)}
    return [elapsed for *_, elapsed in replies]
