"""Hostile input: malformed and oversized requests, slow clients, traversal attempts and
tokens on the admin listener, hostile JSON, deeply nested and non-UTF-8 bodies.

Each time the proxy answers 4xx (or forwards the request faithfully), never passes a
malformed request on, and keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import statistics
import time

import aiohttp
import orjson
import pytest
from aiohttp import web

from shadow.compare import build_rules, compare_replies
from shadow.compare.explain import explain
from shadow.compare.prepare import prepare
from shadow.compare.walk import Walker
from shadow.verdict import Reply
from tests.faults import task_count
from tests.support import (
    HITS,
    VIEWER_TOKEN,
    admin_url,
    counting,
    make_config,
    proxy_url,
    reader,
    running,
    sample_value,
    settle,
)

TOKEN = "hostile-test-token"
MAX_HEADER = 8192  # proxy.max_header_bytes


def echo_app() -> web.Application:
    """Replies with what it received: the raw target, the raw header bytes (as Latin-1
    text, one character per byte), and the body's hash."""
    app = web.Application()

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "raw_path": request.raw_path,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
            "sha256": hashlib.sha256(body).hexdigest(), "length": len(body)})

    app.router.add_route("*", "/{tail:.*}", echo)
    return counting(app)


@pytest.fixture
async def proxy(aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    legacy = await aiohttp_server(echo_app())
    candidate = await aiohttp_server(echo_app())
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         proxy={"max_header_bytes": MAX_HEADER},
                         routes=[{"template": "/latin"}, {"template": "/api/items/{id}"}])
    async with running(config) as runtime:
        yield runtime, legacy


async def raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes, bytes]:
    """Send bytes on a new connection; read until the server closes (or `timeout`).
    Returns (status, head, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    out += chunk
    finally:
        writer.close()
    head, _, body = out.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return status, head, body


def _get(path: str, *headers: bytes) -> bytes:
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(h + b"\r\n" for h in headers)
            + b"Connection: close\r\n\r\n")


async def still_serving(runtime) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy_url(runtime, "/api/items/1")) as resp:
            assert resp.status == 200
            assert (await resp.json())["raw_path"] == "/api/items/1"


# --- malformed requests -----------------------------------------------------------------

BAD_REQUESTS = {
    "not http": b"GARBAGE\r\n\r\n",
    "no target": b"GET\r\n\r\n",
    "unknown version": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "nul in method": b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "spaces in target": b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw 8-bit target": b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "target *": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "no host": b"GET / HTTP/1.1\r\n\r\n",
    "nul in header name": b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad\x00: v\r\n\r\n",
    "space in header name": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
    "control byte in value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    "DEL in value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: x\nX: y\n\n",
    "bare CR": b"GET / HTTP/1.1\rHost: x\r\r",
    "obsolete line folding": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "Content-Length and chunked": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two Content-Lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                           b"Content-Length: 4\r\n\r\nabcd",
    "negative Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "bad chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nabc\r\n0\r\n\r\n",
    "header over max_header_bytes": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
                                    + b"a" * (2 * MAX_HEADER) + b"\r\n\r\n",
    "request line over max_header_bytes": b"GET /" + b"a" * (2 * MAX_HEADER) + b" HTTP/1.1\r\n"
                                          b"Host: x\r\n\r\n",
    "method over max_header_bytes": b"X" * (2 * MAX_HEADER) + b" / HTTP/1.1\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
                        + b"".join(b"X-%d: v\r\n" % i for i in range(1000)) + b"\r\n",
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_a_malformed_request_gets_4xx_is_not_forwarded_and_the_proxy_keeps_serving(proxy, data):
    runtime, legacy = proxy
    status, head, _ = await raw(runtime.proxy_port, data)
    assert status is not None and 400 <= status < 500, head
    assert legacy.app[HITS] == {}
    await still_serving(runtime)
    assert sample_value(runtime, "shadow_internal_errors_total") == 0


async def test_a_header_under_max_header_bytes_is_forwarded_whole(proxy):
    runtime, _ = proxy
    value = "v" * (MAX_HEADER // 2)
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy_url(runtime, "/big"), headers={"X-Big": value}) as resp:
            seen = dict(map(tuple, (await resp.json())["headers"]))
    assert seen["X-Big"] == value


async def test_header_bytes_reach_the_backend_and_the_client_unchanged(aiohttp_server, tmp_path):
    """Regression: header bytes were decoded as Latin-1 and written back as UTF-8, so a
    UTF-8 value (`filename="café.pdf"`) reached the other side double-encoded."""
    async def reply(request: web.Request) -> web.Response:
        return web.json_response(
            {"headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers]},
            headers={"Content-Disposition": 'attachment; filename="café.pdf"'})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    legacy = await aiohttp_server(app)
    candidate = await aiohttp_server(app)
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime:
        status, head, body = await raw(runtime.proxy_port, _get("/x", "X-Name: Zoë Ångström".encode()))
        assert status == 200
        assert 'Content-Disposition: attachment; filename="café.pdf"'.encode() in head
        seen = dict(map(tuple, orjson.loads(body)["headers"]))
        assert seen["X-Name"].encode("latin-1") == "Zoë Ångström".encode()
        await settle(runtime, 1)


async def test_a_latin1_header_byte_costs_no_comparison(proxy):
    """Regression: a header byte that is not UTF-8 (obs-text) reached the exchange as a
    lone surrogate; storing the mismatch sample then failed (an internal error) and the
    comparison never reached the gate. (Its bytes reach the backends unchanged:
    tests/test_fidelity.py.)"""
    runtime, _ = proxy
    status, _, _ = await raw(runtime.proxy_port, _get("/latin", b"X-Latin: caf\xe9"))
    assert status == 200
    await settle(runtime, 1)
    # The echo replies differ (only the shadow sees the marker header): a mismatch, stored.
    assert sample_value(runtime, "shadow_requests_total", route="/latin", method="GET",
                        verdict="mismatch") == 1
    assert sample_value(runtime, "shadow_internal_errors_total") == 0
    assert runtime.cutover.status()["gate"]["compared"] == 1
    async with reader() as session:
        async with session.get(admin_url(runtime, "/api/mismatches")) as resp:
            assert resp.status == 200
            assert len((await resp.json())["mismatches"]) == 1


async def test_an_absolute_form_target_is_forwarded_in_origin_form(proxy):
    """Regression: `GET http://host/path` was forwarded as base URL + whole target, an
    invalid URL: a 502 counted against the primary."""
    runtime, legacy = proxy
    status, _, body = await raw(runtime.proxy_port, _get("http://elsewhere.example/api/items/2?x=%41"))
    assert status == 200
    assert orjson.loads(body)["raw_path"] == "/api/items/2?x=%41"
    await settle(runtime, 1)
    assert sample_value(runtime, "shadow_requests_total", route="/api/items/{id}", method="GET",
                        verdict="primary_error") == 0


async def test_no_header_is_added_to_the_primary_reply(tmp_path):
    """aiohttp fills in Content-Type, Date and Server when a reply has none; the proxy
    takes them out again, so a bare reply from the primary stays bare."""
    async def bare(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(bare, "127.0.0.1", 0) for _ in range(2)]
    urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
    try:
        async with running(make_config(tmp_path, *urls)) as runtime:
            status, head, body = await raw(runtime.proxy_port, _get("/bare"))
    finally:
        for server in servers:
            server.close()
    assert (status, body) == (200, b"ok")
    for name in (b"content-type", b"date", b"server"):
        assert name not in head.lower(), head


# --- slow clients -----------------------------------------------------------------------


async def _latencies(runtime, n: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            started = time.perf_counter()
            async with session.get(proxy_url(runtime, f"/api/items/{i}")) as resp:
                await resp.read()
                assert resp.status == 200
            out.append(time.perf_counter() - started)
    return out


async def test_slowloris_clients_do_not_stop_the_proxy_serving_others(proxy):
    runtime, legacy = proxy
    healthy = await _latencies(runtime, 10)
    await asyncio.sleep(0.1)
    tasks_before = task_count()
    served_before = sum(legacy.app[HITS].values())
    stop = asyncio.Event()
    trickled = 0

    async def trickle(head: bytes, drip: bytes) -> None:
        """Send `head`, then `drip` one byte every 50 ms until told to stop."""
        nonlocal trickled
        _, writer = await asyncio.open_connection("127.0.0.1", runtime.proxy_port)
        try:
            writer.write(head)
            for byte in drip:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                trickled += 1
                await asyncio.sleep(0.05)
        finally:
            writer.transport.abort()

    slow_heads = [trickle(b"GET /api/items HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a" * 100)
                  for _ in range(20)]
    slow_bodies = [trickle(b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
                           b"b" * 1000) for _ in range(5)]
    clients = asyncio.gather(*slow_heads, *slow_bodies)
    try:
        await asyncio.sleep(0.3)
        meanwhile = await _latencies(runtime, 10)
    finally:
        stop.set()
        await clients
    assert trickled > 25 * 3  # the slow clients were really trickling meanwhile
    assert statistics.median(meanwhile) < 5 * statistics.median(healthy), (meanwhile, healthy)
    # Nothing half-received was forwarded; every slow connection's task is gone.
    assert sum(legacy.app[HITS].values()) == served_before + 10
    async with asyncio.timeout(5):
        while task_count() > tasks_before:
            await asyncio.sleep(0.05)
    await still_serving(runtime)


# --- the admin listener -----------------------------------------------------------------

TRAVERSALS = [
    "/api/samples/../../etc/passwd",
    "/api/samples/%2e%2e/%2e%2e/etc/passwd",
    "/api/samples/..%2f..%2fetc%2fpasswd",
    "/api/samples/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/api/samples/1/../../../etc/passwd",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/samples/../../etc/passwd",
    "/samples/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/signatures?signature=../../etc/passwd",
    "/api/mismatches?route=..%2f..%2fetc%2fpasswd&limit=1",
]


async def test_path_traversal_on_the_admin_listener_reads_no_file(proxy):
    runtime, _ = proxy
    for path in TRAVERSALS:
        status, head, body = await raw(runtime.admin_port,
                                       _get(path, b"Authorization: Bearer " + VIEWER_TOKEN.encode()))
        assert status is not None and status in (200, 400, 404), (path, head)
        assert b"root:" not in body, path
    await still_serving(runtime)


async def test_traversal_through_the_proxy_is_forwarded_verbatim(proxy):
    """The proxy does not normalise targets: the backend sees exactly what was sent."""
    runtime, _ = proxy
    for path in ("/../../etc/passwd", "/a/%2e%2e/%2e%2e/etc/passwd?x=%00", "/a/./b//c"):
        status, _, body = await raw(runtime.proxy_port, _get(path))
        assert status == 200
        assert orjson.loads(body)["raw_path"] == path


async def _admin(runtime, path: str, *, auth: str | None, data: bytes | None = None,
                 method: str = "POST") -> tuple[int, bytes, dict]:
    headers = {"Authorization": auth} if auth is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, admin_url(runtime, path), data=data,
                                   headers=headers) as resp:
            return resp.status, await resp.read(), dict(resp.headers)


MODE = orjson.dumps({"mode": "legacy-only", "reason": "test"})


@pytest.mark.parametrize("auth", [
    None, "", "Bearer", "Bearer ", "Bearer wrong-token", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
    f"Basic {base64.b64encode(f'admin:{TOKEN}'.encode()).decode()}", TOKEN, f"Token {TOKEN}",
], ids=["none", "empty", "scheme only", "empty bearer", "wrong", "longer", "shorter", "basic",
        "no scheme", "other scheme"])
async def test_a_mutating_admin_call_without_the_token_is_401_and_changes_nothing(proxy, auth):
    runtime, _ = proxy
    for path, body in (("/api/mode", MODE), ("/api/gate/reset", b'{"reason": "x"}')):
        status, _, headers = await _admin(runtime, path, auth=auth, data=body)
        assert status == 401, path
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert runtime.modes.current.mode == "shadow"
    assert await runtime.store.audit() == []
    status, _, _ = await _admin(runtime, "/api/mode", auth=f"Bearer {TOKEN}", data=MODE)
    assert status == 200 and runtime.modes.current.mode == "legacy-only"


async def test_without_a_configured_token_mutating_calls_are_403(aiohttp_server, tmp_path):
    legacy, candidate = await aiohttp_server(echo_app()), await aiohttp_server(echo_app())
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         admin_token_env="SHADOW_TEST_TOKEN_THAT_IS_NOT_SET")
    async with running(config) as runtime:
        for auth in (None, "Bearer ", f"Bearer {TOKEN}"):
            status, _, _ = await _admin(runtime, "/api/mode", auth=auth, data=MODE)
            assert status == 403
        assert runtime.modes.current.mode == "shadow"


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_JSON = {
    "over the size limit": (orjson.dumps({"mode": "cutover", "reason": "x" * (1 << 20)}), 413),
    "nested 30 000 deep": (b'{"mode": ' + _nested(30_000) + b"}", 400),
    "nested array at the top": (_nested(30_000), 400),
    "objects 10 000 deep": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
    "not UTF-8": (b'{"mode": "\xff\xfe"}', 400),
    "not an object": (b'["cutover"]', 400),
    "mode not a string": (b'{"mode": 7}', 400),
    "force not a bool": (b'{"mode": "cutover", "force": "yes", "reason": "r"}', 400),
    "unknown mode": (b'{"mode": "../../etc/passwd"}', 400),
    "empty": (b"", 400),
}


@pytest.mark.parametrize("body,expected", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
async def test_hostile_json_to_the_admin_api_is_refused(proxy, body, expected):
    runtime, _ = proxy
    status, reply, _ = await _admin(runtime, "/api/mode", auth=f"Bearer {TOKEN}", data=body)
    assert status == expected, reply
    assert runtime.modes.current.mode == "shadow"
    assert await runtime.store.audit() == []
    await still_serving(runtime)


# --- deeply nested and non-UTF-8 bodies ---------------------------------------------------

DEEP = {
    "/deep/array": lambda leaf: b"[" * 100_000 + leaf + b"]" * 100_000,
    "/deep/object": lambda leaf: b'{"a":' * 10_000 + leaf + b"}" * 10_000,
    "/deep/parsed": lambda leaf: b"[" * 900 + leaf + b"]" * 900,  # within orjson's limit
    "/deep/mixed": lambda leaf: b'{"a":[' * 450 + leaf + b"]}" * 450,
}


def _deep_app(leaf: bytes) -> web.Application:
    app = web.Application()
    for path, make in DEEP.items():
        body = make(leaf)

        async def handler(request, body=body):
            return web.Response(body=body, content_type="application/json")

        app.router.add_get(path, handler)
    return app


async def test_deeply_nested_replies_are_forwarded_and_compared(aiohttp_server, tmp_path):
    legacy = await aiohttp_server(_deep_app(b"1"))
    candidate = await aiohttp_server(_deep_app(b"2"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         compare={"unordered_paths": ["$..[*]"], "ignore_paths": ["$..x"]},
                         mirror={"max_reply_bytes": 1 << 20},
                         routes=[{"template": path} for path in DEEP])
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            for path, make in DEEP.items():
                async with session.get(proxy_url(runtime, path)) as resp:
                    assert resp.status == 200
                    assert await resp.read() == make(b"1")
        await settle(runtime, len(DEEP))
        for path in DEEP:
            assert sample_value(runtime, "shadow_requests_total", route=path, method="GET",
                                verdict="mismatch") == 1, path
        assert sample_value(runtime, "shadow_internal_errors_total") == 0
        await still_serving_any(runtime, "/deep/array")


async def still_serving_any(runtime, path: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy_url(runtime, path)) as resp:
            assert resp.status == 200


def _best(fn, repeat: int = 5) -> float:
    """The best time of `repeat` runs of `fn` (each run long enough to time), with the
    garbage collector off as timeit does: its passes cost with the size of the whole heap,
    not of the work timed."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        loops, best = 1, float("inf")
        while True:
            started = time.perf_counter()
            for _ in range(loops):
                fn()
            if time.perf_counter() - started > 0.01:
                break
            loops *= 2
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(loops):
                fn()
            best = min(best, (time.perf_counter() - started) / loops)
        return best
    finally:
        if enabled:
            gc.enable()


def _reply(body: bytes) -> Reply:
    return Reply(200, (("Content-Type", "application/json"),), body, 0.0)


def _replies_cost(make, depth: int, rules):
    primary, shadow = _reply(make(depth, b"1")), _reply(make(depth, b"2"))
    diff = compare_replies(primary, shadow, rules)
    assert diff.differences
    return _best(lambda: compare_replies(primary, shadow, rules))


def _arrays(depth: int, leaf: bytes) -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def _objects(depth: int, leaf: bytes) -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def _mixed(depth: int, leaf: bytes) -> bytes:
    return b'{"x":0,"a":[' * depth + leaf + b"]}" * depth


UNORDERED = build_rules(unordered_paths=["$..[*]", "$..a"], ignore_paths=["$..x"])
LINEAR_CASES = {
    # Beyond orjson's nesting limit: compared as text.
    "100 000-level arrays": (_arrays, 25_000, build_rules()),
    "10 000-level objects": (_objects, 2_500, build_rules()),
    # Parsed (orjson stops at 1 024 levels) and walked; with rules, every level is prepared.
    "1 000-level arrays": (_arrays, 250, build_rules()),
    "1 000-level arrays, unordered": (_arrays, 250, UNORDERED),
    "1 000-level objects, ignore rules": (_objects, 250, UNORDERED),
    "objects in arrays, 960 levels, rules": (_mixed, 120, UNORDERED),
}
GROWTH = 4
LINEAR_LIMIT = 8.0
"""Four times as deep costs about 4x if linear, 16x if quadratic: the limit is between."""


@pytest.mark.parametrize("make,depth,rules", LINEAR_CASES.values(), ids=LINEAR_CASES.keys())
def test_compare_time_grows_linearly_with_depth(make, depth, rules):
    """Regression: unordered rules sorted one-element arrays by a key spelling the whole
    subtree, at every level: 300 levels took 22 ms, 600 took 117 ms, 1 000 took 350 ms."""
    ratio = _replies_cost(make, GROWTH * depth, rules) / _replies_cost(make, depth, rules)
    assert ratio < LINEAR_LIMIT, ratio


def test_the_walker_handles_documents_deeper_than_any_parser():
    """Documents built in memory, far deeper than a reply can parse to: prepare, walk and
    explain without recursion, in linear time."""
    def doc(d, leaf):
        node = {"x": leaf, "v": leaf}
        for _ in range(d):
            node = {"a": [node], "x": 0}
        return node

    def cost(d):
        a, b = doc(d, 1), doc(d, 2)

        def run():
            pa, pb = prepare(a, UNORDERED), prepare(b, UNORDERED)
            walker = Walker(UNORDERED)
            found = walker.compare(pa, pb, split_resized=True)
            assert not found.equal
            return explain(pa, pb, walker=walker, found=found)

        return _best(run, repeat=3)

    assert cost(GROWTH * 1_000) / cost(1_000) < LINEAR_LIMIT


def test_compare_time_of_branching_unordered_arrays_grows_linearly():
    def branching(depth: int, leaf: bytes) -> bytes:
        return b"[" * depth + leaf + b",0]" * depth

    rules = build_rules(unordered_paths=["$..[*]"])
    ratio = _replies_cost(branching, GROWTH * 100, rules) / _replies_cost(branching, 100, rules)
    assert ratio < LINEAR_LIMIT, ratio


def _bytes_app(bodies: dict[str, tuple[bytes, str]]) -> web.Application:
    app = web.Application()
    for path, (body, ctype) in bodies.items():
        async def handler(request, body=body, ctype=ctype):
            await request.read()
            return web.Response(body=body, headers={"Content-Type": ctype})

        app.router.add_route("*", path, handler)
    return counting(app)


NON_UTF8 = {
    "/json": (b'{"name": "caf\xe9", "n": 1}', "application/json"),
    "/html": (b"<p>caf\xe9 \xff\xfe</p>", "text/html; charset=utf-8"),
    "/latin": (b"caf\xe9", "text/plain; charset=latin-1"),
    "/nonsense-charset": (b"\x80\x81\x82", "text/plain; charset=x-no-such-charset"),
    "/form": (b"a=\xff&password=\xfe", "application/x-www-form-urlencoded"),
}


async def test_non_utf8_bodies_are_forwarded_byte_for_byte_and_compared(aiohttp_server, tmp_path):
    legacy = await aiohttp_server(_bytes_app(NON_UTF8))
    candidate = await aiohttp_server(_bytes_app(
        {path: (body + b"\xfd", ctype) for path, (body, ctype) in NON_UTF8.items()}))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": path} for path in NON_UTF8])
    request_body = b'{"note": "\xff\xfe\x00 not UTF-8"}'
    async with running(config) as runtime:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            for path, (body, ctype) in NON_UTF8.items():
                async with session.post(proxy_url(runtime, path), data=request_body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    assert resp.status == 200
                    assert await resp.read() == body
                    assert resp.headers["Content-Type"] == ctype
        await settle(runtime, len(NON_UTF8))
        for path in NON_UTF8:
            assert sample_value(runtime, "shadow_requests_total", route=path, method="POST",
                                verdict="mismatch") == 1, path
        assert sample_value(runtime, "shadow_internal_errors_total") == 0
        async with reader() as session:
            async with session.get(admin_url(runtime, "/api/mismatches?limit=50")) as resp:
                assert resp.status == 200
                samples = (await resp.json())["mismatches"]
        assert len(samples) == len(NON_UTF8)
        text = orjson.dumps(samples).decode()
        assert "caf\\ufffd" not in text and "café" not in text  # sizes and fingerprints only
        assert "not UTF-8" not in text
        bodies = [s["sample"][side]["body"] for s in samples for side in ("primary", "shadow")]
        assert {b["form"] for b in bodies} == {"text", "form"}  # invalid UTF-8 is no JSON


async def test_a_non_utf8_request_body_reaches_both_backends_unchanged(proxy):
    runtime, _ = proxy
    body = bytes(range(256)) * 4
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy_url(runtime, "/api/items/3"), data=body,
                               headers={"Content-Type": "application/json; charset=utf-8"}) as resp:
            seen = await resp.json()
    assert (seen["length"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    await settle(runtime, 1)
    assert sample_value(runtime, "shadow_internal_errors_total") == 0
