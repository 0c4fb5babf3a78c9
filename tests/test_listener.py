"""Client connections are bounded in time and number on both listeners (shadow.listener).

Raw sockets against a real proxy: connections holding half a request head are answered
408 and closed after the header timeout, idle kept-alive ones after the idle timeout; a
request whose head is complete is never cut by the header timeout however slow its reply;
and with the proxy port saturated under a small descriptor limit, the admin port still
answers (an operator can roll back) while new proxy connections get a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource

import aiohttp
import pytest

from shadow.listener import fd_budget
from tests.faults import ProxyProcess, closed_port, healthy_app, proxy_config
from tests.support import make_config, running, sample_value

WAIT = 60.0  # seconds: a generous bound on waiting for closes; only a hang reaches it
UNUSED = f"http://127.0.0.1:{closed_port()}"  # the candidate: legacy-only mode never calls it
HALF_HEAD = b"GET /api/items HTTP/1.1\r\nHost: p\r\nX-Half: "


async def _open(port: int, n: int, data: bytes) -> list[tuple[asyncio.StreamReader,
                                                              asyncio.StreamWriter]]:
    """`n` connections to `port`, each having sent `data` (opened 100 at a time)."""
    conns = []
    for start in range(0, n, 100):
        batch = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                       for _ in range(min(100, n - start))))
        for _, writer in batch:
            writer.write(data)
        conns.extend(batch)
    return conns


async def _ended(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            out += chunk
    return out


def _close_all(conns) -> None:
    for _, writer in conns:
        writer.transport.abort()


async def _all_ended(conns) -> list[bytes]:
    """What each connection received until the server closed it (then all are aborted)."""
    try:
        async with asyncio.timeout(WAIT):
            return await asyncio.gather(*(_ended(reader) for reader, _ in conns))
    finally:
        _close_all(conns)


@pytest.fixture
async def backend(aiohttp_server):
    return await aiohttp_server(healthy_app(delay=0.0))


def _config(tmp_path, backend, **connections):
    url = str(backend.make_url("")).rstrip("/")
    return make_config(tmp_path, url, UNUSED, mode="legacy-only", connections=connections)


async def test_2000_half_heads_on_the_proxy_port_are_closed_after_the_header_timeout(
        tmp_path, backend):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if min(soft, hard) < 5000:
        fd_budget(0)  # raises the soft limit to the hard one, as `shadow run` does
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 5000:
            pytest.fail("this test needs 5000 descriptors (2000 connections, both ends)")
    config = _config(tmp_path, backend, header_timeout=1.0, idle_timeout=300.0)
    async with running(config) as runtime:
        replies = await _all_ended(await _open(runtime.proxy_port, 2000, HALF_HEAD))
        assert all(r.startswith(b"HTTP/1.1 408 Request Timeout\r\n") for r in replies)
        assert sample_value(runtime, "shadow_connections_closed_total",
                            listener="proxy", reason="header_timeout") == 2000
        async with asyncio.timeout(WAIT):
            while runtime.guards["proxy"].open:
                await asyncio.sleep(0.05)
        assert sample_value(runtime, "shadow_connections_open", listener="proxy") == 0
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{runtime.proxy_port}/ok") as resp:
                assert resp.status == 200


async def test_the_admin_listener_closes_half_heads_and_silent_connections_too(tmp_path,
                                                                                backend):
    config = _config(tmp_path, backend, header_timeout=0.5, idle_timeout=300.0)
    async with running(config) as runtime:
        conns = await _open(runtime.admin_port, 20, b"GET /metrics HTTP/1.1\r\nHo")
        conns += await _open(runtime.admin_port, 20, b"")
        replies = await _all_ended(conns)
        assert all(r.startswith(b"HTTP/1.1 408") for r in replies)
        assert sample_value(runtime, "shadow_connections_closed_total",
                            listener="admin", reason="header_timeout") == 40


@pytest.mark.parametrize("listener", ["proxy", "admin"])
async def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(
        tmp_path, backend, listener):
    config = _config(tmp_path, backend, header_timeout=300.0, idle_timeout=0.5)
    async with running(config) as runtime:
        port = runtime.proxy_port if listener == "proxy" else runtime.admin_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
            async with asyncio.timeout(WAIT):
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # half of the next head
                assert await _ended(reader) == b""  # closed, without a second reply
        finally:
            writer.transport.abort()
        assert head.startswith(b"HTTP/1.1 200")


async def test_a_complete_head_is_not_cut_by_the_header_timeout_however_slow_the_reply(
        tmp_path, aiohttp_server):
    slow = await aiohttp_server(healthy_app(delay=1.5))
    config = _config(tmp_path, slow, header_timeout=0.3, idle_timeout=300.0)
    async with running(config) as runtime:
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.proxy_port)
        try:
            writer.write(b"GET /slow HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
            async with asyncio.timeout(WAIT):
                reply = await _ended(reader)
        finally:
            writer.transport.abort()
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert sample_value(runtime, "shadow_connections_closed_total",
                            listener="proxy", reason="header_timeout") == 0


# --- the connection limit: admin reachable while the proxy port is saturated -------------

FDS = 256        # the subprocess's descriptor limit (soft and hard: it cannot raise it)
POOL = 16        # proxy.pool_size: the reserve is 2 x 16 + 32 admin + 64 = 128
ADMIN = 32


async def test_admin_answers_while_the_proxy_port_is_saturated(tmp_path, aiohttp_server):
    backend = await aiohttp_server(healthy_app())
    url = str(backend.make_url("")).rstrip("/")

    def limit_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FDS, FDS))

    config = proxy_config(tmp_path, url, UNUSED, mode="legacy-only", proxy={"pool_size": POOL},
                          connections={"header_timeout": 120.0,
                                       "max_admin_connections": ADMIN})
    proxy = await ProxyProcess.start(tmp_path, config, preexec_fn=limit_fds)
    conns = []
    try:
        # Twice the descriptors the process has: without a limit, accept() would run out
        # and the admin port with it.
        conns = await _open(proxy.proxy_port, 2 * FDS, HALF_HEAD)
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(WAIT):
                async with session.get(proxy.admin("/healthz")) as resp:
                    assert resp.status == 200
                async with session.get(proxy.url("/api/items/1")) as resp:
                    assert resp.status == 503
                async with session.get(proxy.admin("/metrics")) as resp:
                    metrics = await resp.text()
        values = dict(line.rsplit(" ", 1) for line in metrics.splitlines()
                      if line.startswith("shadow_connections_"))
        limit = float(values['shadow_connections_limit{listener="proxy"}'])
        assert limit == FDS - 2 * POOL - ADMIN - 64
        assert float(values['shadow_connections_open{listener="proxy"}']) == limit
        assert float(values['shadow_connections_closed_total{listener="proxy",reason="limit"}']) \
            >= 2 * FDS - limit
        _close_all(conns)
        conns = []
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(WAIT):
                while True:  # the held connections are let go: the proxy serves again
                    async with session.get(proxy.url("/api/items/1")) as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.1)
    finally:
        _close_all(conns)
        await proxy.close()


def test_the_descriptor_budget_sets_the_reserve_aside():
    limit, room = fd_budget(100)
    assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert room == limit - 100 - 64


async def test_a_descriptor_limit_with_no_room_for_clients_fails_start_up(tmp_path, backend):
    from shadow.app import Runtime, StartError

    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    config = make_config(tmp_path, str(backend.make_url("")), UNUSED,
                         proxy={"pool_size": limit}, connections={})
    runtime = Runtime(config)
    with pytest.raises(StartError, match="descriptor limit"):
        await runtime.start()
    await runtime.stop()
