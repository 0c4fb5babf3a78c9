"""A request reaches the primary exactly once (DESIGN.md promise 2), through the proxy.

The primary is a raw server that answers one request on a connection, then reads the next
in full and closes without a byte: exactly what a backend that applied a request and died
looks like, and also what a backend that closed an idle connection looks like. Reads are
sent again on a new connection (RFC 9112 section 9.3.1); anything else is answered 502,
saying it may have been applied, unless its route says `resend = true`.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.faults import closed_port
from tests.rawserver import (  # noqa: F401  (serve: a fixture)
    Peer, answer_then_drop_the_next, echo, per_connection, serve,
)
from tests.support import make_config, proxy_url, running


UNUSED = f"http://127.0.0.1:{closed_port()}"  # the candidate: legacy-only mode never calls it


async def probed(peer: Peer) -> None:
    """Connection 0: the start-up probe, which connects and hangs up without a request."""
    assert await peer.read_request() is None


async def _primed(session: aiohttp.ClientSession, runtime, primary) -> None:
    """Once the start-up probe has come and gone, one answered request: the proxy now
    holds a kept-alive connection to the primary."""
    async with asyncio.timeout(10):
        while not (primary.peers and primary.peers[0].eof.is_set()):
            await asyncio.sleep(0.01)
    async with session.get(proxy_url(runtime, "/first")) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
async def test_a_write_is_not_resent_and_the_client_is_told_it_may_be_applied(serve, tmp_path,
                                                                               method):
    primary = await serve(per_connection(probed, answer_then_drop_the_next, echo))
    config = make_config(tmp_path, primary.url, UNUSED, mode="legacy-only")
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        await _primed(session, runtime, primary)
        async with session.request(method, proxy_url(runtime, "/api/orders/7"),
                                   data=b'{"n": 1}') as resp:
            status, body = resp.status, await resp.json()
    assert status == 502
    assert body["error"] == "primary_dropped"
    assert "may have been applied" in body["message"]
    assert [r.target for r in primary.requests if r.method == method] == ["/api/orders/7"]
    assert len(primary.peers) == 2  # the probe's and the one the request was dropped on


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_a_read_is_resent_once_on_a_new_connection(serve, tmp_path, method):
    primary = await serve(per_connection(probed, answer_then_drop_the_next, echo))
    config = make_config(tmp_path, primary.url, UNUSED, mode="legacy-only")
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        await _primed(session, runtime, primary)
        async with session.request(method, proxy_url(runtime, "/api/orders/7")) as resp:
            status = resp.status
    assert status == 200
    assert [(r.conn, r.method) for r in primary.requests if r.target == "/api/orders/7"] == [
        (1, method), (2, method)]


async def test_a_route_may_allow_its_writes_to_be_resent_and_a_read_to_be_sent_once(
        serve, tmp_path):
    primary = await serve(per_connection(probed, answer_then_drop_the_next,
                                         answer_then_drop_the_next, echo))
    routes = [{"template": "/api/orders/{id}", "methods": ["PUT"], "resend": True},
              {"template": "/api/report", "resend": False}]
    config = make_config(tmp_path, primary.url, UNUSED, mode="legacy-only", routes=routes)
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        await _primed(session, runtime, primary)
        async with session.put(proxy_url(runtime, "/api/orders/7"), data=b"x") as resp:
            assert resp.status == 200
        async with session.get(proxy_url(runtime, "/api/report")) as resp:
            assert resp.status == 502
            assert (await resp.json())["error"] == "primary_dropped"
    assert [(r.conn, r.method, r.target) for r in primary.requests] == [
        (1, "GET", "/first"), (1, "PUT", "/api/orders/7"), (2, "PUT", "/api/orders/7"),
        (2, "GET", "/api/report")]
