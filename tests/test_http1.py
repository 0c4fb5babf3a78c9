"""shadow.http1 (the lean HTTP/1.1 client) against real servers on loopback, no mocks.

Most tests script a raw `asyncio.start_server` server (`RawServer`) per test so that the
exact bytes on the wire are known both ways: what the client wrote (recorded per
connection) and what it is given (chunked bodies with extensions and trailers, bodies in
many small writes, interim 1xx replies, malformed heads, resets, ...). One test talks to
an aiohttp `web` server. Every server and pool is closed by a fixture, even on failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from shadow import http1
from shadow.http1 import MAX_HEAD, HttpError, Pool, Response
from tests.rawserver import (  # noqa: F401  (pools and serve: fixtures used by name)
    CHUNKED_HEAD, Peer, answer_then_drop_the_next, chunked, echo, held, ok, per_connection, pools, replying, reply_for,
    serve,
)

# --- helpers ----------------------------------------------------------------------------


async def fetch(pool: Pool, target: str = "/", method: str = "GET", body=b"",
                headers: list[tuple[str, str]] | None = None, **kw) -> tuple[Response, bytes]:
    """A whole exchange: request, read the body, release."""
    response = await pool.request(method, target, headers or [], body, **kw)
    try:
        data = await response.read()
    except BaseException:
        response.close()
        raise
    response.release()
    return response, data


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def stop(*tasks: asyncio.Future) -> None:
    """Cancel the tasks a test started and wait until they are done (test teardown)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def aiter_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def pattern(n: int) -> bytes:
    """n deterministic, non-repeating-looking bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


BIG = pattern(2 * 1024 * 1024)  # larger than the pause threshold, many times over


# --- the request on the wire ------------------------------------------------------------


async def test_request_head_has_prefix_host_and_headers_in_order(serve, pools):
    server = await serve(echo)
    pool = pools(server.url + "/api/v1/")
    headers = [("X-B", "2"), ("X-A", "1"), ("x-b", "3"), ("User-Agent", "t/1"), ("X-U", "é")]
    response, body = await fetch(pool, "/items?q=1&r=%20", headers=headers)
    assert (response.status, body) == (200, b"/api/v1/items?q=1&r=%20")
    [request] = server.requests
    assert request.raw == (
        f"GET /api/v1/items?q=1&r=%20 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "X-B: 2\r\nX-A: 1\r\nx-b: 3\r\nUser-Agent: t/1\r\nX-U: é\r\n\r\n").encode()


@pytest.mark.parametrize("method, body, framing", [
    ("GET", b"", None),
    ("HEAD", b"", None),
    ("DELETE", b"", None),
    ("OPTIONS", b"", None),
    ("POST", b"", "Content-Length: 0"),
    ("PUT", b"", "Content-Length: 0"),
    ("PATCH", b"", "Content-Length: 0"),
    ("POST", b"a=1&b=2", "Content-Length: 7"),
    ("GET", b"x", "Content-Length: 1"),
    ("PUT", bytearray(b"abc"), "Content-Length: 3"),
    ("POST", pattern(100_000), "Content-Length: 100000"),
], ids=["get", "head", "delete", "options", "empty-post", "empty-put", "empty-patch", "post",
        "get-with-body", "bytearray", "large-post"])
async def test_body_framing_with_bytes(serve, pools, method, body, framing):
    server = await serve(echo)
    pool = pools(server.url)
    response, data = await fetch(pool, "/p", method=method, body=body)
    assert response.status == 200
    [request] = server.requests
    expected = f"{method} /p HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    if framing:
        expected += framing + "\r\n"
    assert request.raw == expected.encode() + b"\r\n" + bytes(body)
    assert data == (b"" if method == "HEAD" else reply_for(request).split(b"\r\n\r\n", 1)[1])


async def test_async_iterator_body_is_sent_chunked(serve, pools):
    server = await serve(echo)
    pool = pools(server.url + "/base")
    big = pattern(70_000)
    response, data = await fetch(pool, "/up", method="POST", headers=[("X-A", "1")],
                                 body=aiter_of(b"hello", b"", b" world", big))
    assert response.status == 200
    assert data == b"/base/up:hello world" + big
    [request] = server.requests
    assert request.raw == (
        f"POST /base/up HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-A: 1\r\n"
        "Transfer-Encoding: chunked\r\n\r\n").encode() + (
        b"5\r\nhello\r\n6\r\n world\r\n" + b"%x\r\n" % len(big) + big + b"\r\n0\r\n\r\n")
    assert request.header(b"content-length") is None


async def test_empty_async_iterator_body_is_a_lone_last_chunk(serve, pools):
    server = await serve(echo)
    pool = pools(server.url)
    _, data = await fetch(pool, "/e", method="PUT", body=aiter_of())
    assert data == b"/e"
    assert server.requests[0].raw.endswith(b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")


async def test_ipv6_host_header_is_bracketed(serve, pools):
    try:
        server = await serve(echo, host="::1")
    except OSError as exc:
        pytest.skip(f"::1 is unavailable: {exc}")
    pool = pools(server.url)
    _, data = await fetch(pool, "/six")
    assert data == b"/six"
    assert server.requests[0].header(b"host") == f"[::1]:{server.port}".encode()


def test_host_header_and_prefix_from_the_url():
    cases = {
        "http://example.test": ("example.test", ""),
        "http://example.test:80/": ("example.test", ""),
        "http://example.test:8080/a/b/": ("example.test:8080", "/a/b"),
        "https://example.test:443/x": ("example.test", "/x"),
        "https://example.test:8443": ("example.test:8443", ""),
        "http://[::1]/": ("[::1]", ""),
        "http://[::1]:9000/p": ("[::1]:9000", "/p"),
    }
    for url, (host, prefix) in cases.items():
        pool = Pool(url, limit=1, connect_timeout=1.0)
        assert (pool.host_header, pool.prefix) == (host, prefix), url
    for bad in ("ftp://example.test/", "example.test", "http:///nohost"):
        with pytest.raises(ValueError):
            Pool(bad, limit=1, connect_timeout=1.0)


async def test_against_an_aiohttp_server(aiohttp_server, pools):
    peers: list[tuple] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername"))
        data = await request.read()
        if request.path.endswith("/stream"):
            response = web.StreamResponse(headers={"X-Kind": "stream"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for i in range(5):
                await response.write(b"part%d;" % i)
            await response.write_eof()
            return response
        return web.json_response({
            "method": request.method, "path": request.path_qs, "host": request.host,
            "x": request.headers.get("X-Thing"), "te": request.headers.get("Transfer-Encoding"),
            "length": len(data), "sha": hashlib.sha256(data).hexdigest()})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app)
    pool = pools(f"http://127.0.0.1:{server.port}/api")

    response, data = await fetch(pool, "/echo?x=1", headers=[("X-Thing", "one")])
    info = json.loads(data)
    assert response.status == 200
    assert (info["method"], info["path"], info["host"], info["x"], info["length"]) == (
        "GET", "/api/echo?x=1", f"127.0.0.1:{server.port}", "one", 0)

    payload = pattern(200_000)
    _, data = await fetch(pool, "/echo", method="POST",
                          body=aiter_of(payload[:1], payload[1:150_000], payload[150_000:]))
    info = json.loads(data)
    assert (info["method"], info["te"], info["length"], info["sha"]) == (
        "POST", "chunked", len(payload), hashlib.sha256(payload).hexdigest())

    response = await pool.request("GET", "/stream", [], b"")
    assert response.content_length is None
    assert (b"X-Kind", b"stream") in response.raw_headers
    assert b"".join([chunk async for chunk in response.chunks()]) == b"part0;part1;part2;part3;part4;"
    response.release()

    _, data = await fetch(pool, "/echo", method="PUT", body=b"xyz")
    assert json.loads(data)["length"] == 3
    assert len(peers) == 4 and len(set(peers)) == 1  # one keep-alive connection throughout
    assert pool.open_connections == 1


# --- CR, LF, NUL and other malformed request heads are refused before sending -----------

BAD_HEADS = {
    "target-crlf": ("GET", "/a\r\nX-Evil: 1", []),
    "target-lf": ("GET", "/a\nb", []),
    "target-cr": ("GET", "/a\rb", []),
    "target-nul": ("GET", "/a\x00b", []),
    "target-space": ("GET", "/a b", []),
    "target-not-origin-form": ("GET", "a", []),
    "method-crlf": ("GE\r\nT", "/", []),
    "method-space": ("GET ", "/", []),
    "name-crlf": ("GET", "/", [("X-Evil\r\nInjected", "1")]),
    "name-nul": ("GET", "/", [("X\x00A", "b")]),
    "name-lf": ("GET", "/", [("X\nA", "b")]),
    "value-crlf": ("GET", "/", [("X-A", "1\r\nX-Injected: 2")]),
    "value-lf": ("GET", "/", [("X-A", "1\n")]),
    "value-cr": ("GET", "/", [("X-A", "\r")]),
    "value-nul": ("GET", "/", [("X-A", "a\x00b")]),
    "smuggle-in-second-header": ("GET", "/", [("X-A", "ok"),
                                              ("X-B", "x\r\n\r\nGET /smuggled HTTP/1.1")]),
}


@pytest.mark.parametrize("method, target, headers", BAD_HEADS.values(), ids=BAD_HEADS.keys())
@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "iterator"])
async def test_bad_request_head_is_refused_and_nothing_is_sent(serve, pools, method, target,
                                                                headers, streamed):
    server = await serve(echo)
    pool = pools(server.url)
    await fetch(pool, "/first")  # one idle keep-alive connection to the server
    peer = server.peers[0]
    before = bytes(peer.raw)
    iterated = []

    async def body() -> AsyncIterator[bytes]:
        iterated.append(True)
        yield b"data"

    with pytest.raises(HttpError) as info:
        await pool.request(method, target, headers, body() if streamed else b"data")
    assert info.value.error == "protocol"
    assert not iterated
    assert pool.open_connections == 1
    await pool.close()
    await asyncio.wait_for(peer.eof.wait(), 2)
    assert bytes(peer.raw) == before  # not one byte of the refused request
    assert len(server.peers) == 1 and len(server.requests) == 1


# --- keep-alive --------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(serve, pools):
    server = await serve(replying(ok(b"one"), ok(b"two"), ok(b"three")))
    pool = pools(server.url)
    bodies = [(await fetch(pool, f"/{i}"))[1] for i in range(3)]
    assert bodies == [b"one", b"two", b"three"]
    assert len(server.peers) == 1
    assert [r.conn for r in server.requests] == [0, 0, 0]
    assert pool.open_connections == 1


NOT_REUSABLE = {
    "connection-close": (ok(b"x", "Connection: close"), False),
    "connection-close-token-list": (ok(b"x", "Connection: Foo, CLOSE"), False),
    "close-delimited": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nx", True),
    "http10": (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", False),
    "bytes-after-reply": (ok(b"x") + b"HTTP/1.1 200 OK\r\n", False),
    "junk-after-reply": (ok(b"x") + b"junk", False),
}


@pytest.mark.parametrize("reply, server_closes", NOT_REUSABLE.values(), ids=NOT_REUSABLE.keys())
async def test_connection_not_reused(serve, pools, reply, server_closes):
    server = await serve(replying(reply, close=server_closes))
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool)
        assert (response.status, body) == (200, b"x")
        assert response.keep_alive is False
        assert pool.open_connections == 0
    assert len(server.peers) == 2
    if not server_closes:  # the client closed the connection it would not reuse
        await asyncio.wait_for(server.peers[0].eof.wait(), 2)


async def test_http10_keep_alive_is_reused(serve, pools):
    server = await serve(replying(
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok"))
    pool = pools(server.url)
    for _ in range(3):
        response, body = await fetch(pool)
        assert (response.version, response.keep_alive, body) == (0, True, b"ok")
    assert len(server.peers) == 1


async def test_response_close_prevents_reuse(serve, pools):
    server = await serve(echo)
    pool = pools(server.url)
    response = await pool.request("GET", "/unread", [], b"")
    response.close()
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)
    _, body = await fetch(pool, "/next")
    assert body == b"/next"
    assert len(server.peers) == 2


async def test_release_before_the_end_of_the_body_prevents_reuse(serve, pools):
    server = await serve(replying(ok(b"a" * 10)[:-4]))  # 6 of the 10 bytes
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    assert response.content_length == 10
    response.release()  # the body was not read to its end: the connection cannot be reused
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)


async def test_idle_connection_expires_after_keepalive(serve, pools):
    server = await serve(echo)
    pool = pools(server.url, keepalive=0.1)
    await fetch(pool, "/1")
    _, body = await fetch(pool, "/2")  # within keepalive: reused
    assert (body, len(server.peers)) == (b"/2", 1)
    await asyncio.sleep(0.2)
    _, body = await fetch(pool, "/3")
    assert body == b"/3"
    assert len(server.peers) == 2
    assert [r.conn for r in server.requests] == [0, 0, 1]
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)  # the expired one was closed
    assert pool.open_connections == 1


async def test_idle_connection_closed_by_the_server_is_forgotten(serve, pools):
    server = await serve(replying(ok(b"bye"), close=True))  # keep-alive reply, then FIN
    pool = pools(server.url)
    _, body = await fetch(pool)
    assert body == b"bye"
    await until(lambda: pool.open_connections == 0)
    _, body = await fetch(pool)
    assert body == b"bye"
    assert len(server.peers) == 2
    assert len(server.requests) == 2  # the second request went straight to a new connection


async def test_bytes_on_an_idle_connection_close_it(serve, pools):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(ok(b"x"))
        await asyncio.sleep(0.05)
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
        await peer.until_eof()

    server = await serve(per_connection(handler, echo))
    pool = pools(server.url)
    await fetch(pool)
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)  # the client hung up
    assert pool.open_connections == 0
    _, body = await fetch(pool, "/fresh")
    assert body == b"/fresh"  # not the stale bytes
    assert len(server.peers) == 2


# --- parsing replies ----------------------------------------------------------------------


async def test_reply_head_is_parsed(serve, pools):
    server = await serve(replying(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-Multi: a\r\n"
        b"x-multi:   b  \r\nX-Empty:\r\nContent-Length: 4\r\n\r\nnope",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 299 Caf\xe9\r\nContent-Length: 0\r\n\r\n"))
    pool = pools(server.url)
    response, body = await fetch(pool)
    assert (response.status, response.reason, response.version) == (404, "Not Found", 1)
    assert response.raw_headers == [(b"Content-Type", b"text/plain"), (b"X-Multi", b"a"),
                                    (b"x-multi", b"b"), (b"X-Empty", b""),
                                    (b"Content-Length", b"4")]
    assert (response.content_length, body, response.keep_alive) == (4, b"nope", True)
    response, body = await fetch(pool)
    assert (response.status, response.reason, body) == (200, "", b"")
    response, _ = await fetch(pool)
    assert (response.status, response.reason) == (299, "Café")
    assert len(server.peers) == 1


@pytest.mark.parametrize("te", ["chunked", "Chunked", "gzip, chunked"])
async def test_chunked_reply_with_extensions_and_trailers(serve, pools, te):
    reply = (f"HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n".encode()
             + b"5;name=value\r\nhello\r\n"
             + b"6 ; ext=\"quoted;\"\r\n world\r\n"
             + b"A\r\n0123456789\r\n"
             + b"0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n")
    server = await serve(replying(reply))
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool)
        assert body == b"hello world0123456789"
        assert response.content_length is None
    assert len(server.peers) == 1  # the trailers were consumed to the exact end


async def test_chunked_and_content_length_chunked_wins(serve, pools):
    server = await serve(replying(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(b"abcdef")))
    pool = pools(server.url)
    response, body = await fetch(pool)
    assert (body, response.content_length) == (b"abcdef", None)
    _, body = await fetch(pool)
    assert body == b"abcdef" and len(server.peers) == 1


SPLIT_REPLIES = {
    "content-length": ok(b"0123456789" * 5, "X-A: b"),
    "chunked": CHUNKED_HEAD + b"3;x=y\r\nabc\r\n10\r\n" + b"z" * 16 + b"\r\n0\r\nT: v\r\n\r\n",
    "interim-then-chunked": b"HTTP/1.1 100 Continue\r\n\r\n" + CHUNKED_HEAD + chunked(b"abc"),
}
SPLIT_BODIES = {"content-length": b"0123456789" * 5, "chunked": b"abc" + b"z" * 16,
                "interim-then-chunked": b"abc"}


@pytest.mark.parametrize("name", SPLIT_REPLIES)
async def test_reply_split_into_single_bytes(serve, pools, name):
    data = SPLIT_REPLIES[name]

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(*[data[i:i + 1] for i in range(len(data))], gap=0)

    server = await serve(handler)
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool)
        assert (response.status, body) == (200, SPLIT_BODIES[name])
    assert len(server.peers) == 1


async def test_body_in_many_small_writes_streams_through_chunks(serve, pools):
    parts = [pattern(i * 7 + 1) for i in range(40)]

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD, gap=0)
        for part in parts:
            frame = b"%x\r\n%s\r\n" % (len(part), part)
            await peer.send(frame[:2], frame[2:], gap=0)
        await peer.send(b"0\r\n", b"\r\n")
        await peer.until_eof()

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    got = bytearray()
    pieces = 0
    async for chunk in response.chunks():
        got += chunk
        pieces += 1
    assert bytes(got) == b"".join(parts)
    assert pieces > 1  # streamed as it came, not in one piece
    response.release()
    assert pool.open_connections == 1


@pytest.mark.parametrize("interim", [
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
], ids=["100", "100-102", "103-with-headers"])
@pytest.mark.parametrize("same_write", [False, True], ids=["apart", "together"])
async def test_interim_replies_are_skipped(serve, pools, interim, same_write):
    final = ok(b"made", "X-Final: 1", status="201 Created")

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            if same_write:
                await peer.send(interim + final)
            else:
                await peer.send(interim, gap=0.01)
                await peer.send(final)

    server = await serve(handler)
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool, method="POST", body=b"x",
                                     headers=[("Expect", "100-continue")])
        assert (response.status, response.reason, body) == (201, "Created", b"made")
        assert response.raw_headers == [(b"X-Final", b"1"), (b"Content-Length", b"4")]
    assert len(server.peers) == 1


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
], ids=["content-length", "chunked", "no-framing"])
async def test_head_reply_has_no_body(serve, pools, head):
    server = await serve(replying(head))
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool, method="HEAD", read_timeout=2.0)
        assert (response.status, body) == (200, b"")
        if b"1234" in head:
            assert response.content_length == 1234
    assert len(server.peers) == 1  # the next reply was not taken for a body
    assert [r.method for r in server.requests] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"v1\"\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
], ids=["204", "204-length-0", "304-length", "304-chunked"])
async def test_204_and_304_have_no_body(serve, pools, reply):
    server = await serve(replying(reply))
    pool = pools(server.url)
    for _ in range(2):
        response, body = await fetch(pool, read_timeout=2.0)
        assert response.status in (204, 304)
        assert body == b""
    assert len(server.peers) == 1


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK"])
async def test_close_delimited_body(serve, pools, status_line):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(status_line + b"\r\nX-A: 1\r\n\r\n", b"first,", b"second,", b"third",
                        gap=0.01)
        # returning closes the connection: the end of the body

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    assert response.content_length is None and response.keep_alive is False
    assert await response.read() == b"first,second,third"
    response.release()
    assert pool.open_connections == 0


async def test_close_delimited_body_through_chunks(serve, pools):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n", *[b"%03d|" % i for i in range(30)], gap=0)

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    got = b"".join([chunk async for chunk in response.chunks()])
    assert got == b"".join(b"%03d|" % i for i in range(30))
    response.release()
    assert pool.open_connections == 0


INVALID_REPLIES = {
    "status-four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-http2": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-lowercase": b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-http12": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-no-space": b"HTTP/1.1200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-empty": b"\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nX-Space : v\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon-length": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "empty-header-name": b"HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n",
    "obs-fold-space": b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
    "obs-fold-tab": b"HTTP/1.1 200 OK\r\nX-A: one\r\n\ttwo: x\r\nContent-Length: 0\r\n\r\n",
    "bare-lf-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n",
    "bare-cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "conflicting-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                           b"hello!",
    "length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "length-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "length-plus": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "length-hex": b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
    "length-huge": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "chunk-size-not-hex": CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-0x": CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-empty": CHUNKED_HEAD + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-size-too-long": CHUNKED_HEAD + b"1" * 17 + b"\r\n",
    "chunk-without-crlf": CHUNKED_HEAD + b"5\r\nhelloXX0\r\n\r\n",
    "chunk-line-too-long": CHUNKED_HEAD + b"5;" + b"e" * 5000,
}


@pytest.mark.parametrize("reply", INVALID_REPLIES.values(), ids=INVALID_REPLIES.keys())
async def test_invalid_reply_is_a_protocol_error(serve, pools, reply):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(reply)
        await peer.until_eof()  # the server keeps the connection: the client must drop it

    server = await serve(handler)
    pool = pools(server.url)
    with pytest.raises(HttpError) as info:
        await fetch(pool, read_timeout=2.0)
    assert info.value.error == "protocol"
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)
    assert len(server.requests) == 1  # not sent again


def big_head(size: int) -> bytes:
    """A reply head (Content-Length: 2, then padding headers) of exactly `size` bytes,
    its CRLFCRLF terminator not included."""
    lines = [b"HTTP/1.1 200 OK\r\nContent-Length: 2", b"\r\nX-Pad-00000: p"]
    total = sum(map(len, lines))
    while total < size:
        line = b"\r\nX-Pad-%05d: p" % len(lines)
        room = size - total
        if room < len(line) + 1:  # no room for one more line: widen the last one
            lines[-1] += b"p" * room
            break
        pad = min(1000, room - len(line))
        lines.append(line + b"p" * pad)
        total += len(line) + pad
    head = b"".join(lines)
    assert len(head) == size, (len(head), size)
    return head


async def test_head_just_under_max_head_is_accepted(serve, pools):
    head = big_head(MAX_HEAD - 100)
    server = await serve(replying(head + b"\r\n\r\nok"))
    pool = pools(server.url)
    response, body = await fetch(pool)
    assert (response.status, body) == (200, b"ok")
    assert len(response.raw_headers) == head.count(b"\r\n")


@pytest.mark.parametrize("terminated", [True, False], ids=["complete", "unterminated"])
async def test_head_larger_than_max_head_is_refused(serve, pools, terminated):
    head = big_head(MAX_HEAD + 2000)

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(head + (b"\r\n\r\nok" if terminated else b""))
        await peer.until_eof()

    server = await serve(handler)
    pool = pools(server.url)
    with pytest.raises(HttpError) as info:
        await fetch(pool, read_timeout=2.0)  # unterminated: refused, not waited for
    assert info.value.error == "protocol"
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)


async def test_head_of_exactly_max_head_does_not_depend_on_segmentation(serve, pools):
    head = big_head(MAX_HEAD)

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(head + b"\r\n", gap=0.05)
        await peer.send(b"\r\nok")
        await peer.until_eof()

    server = await serve(handler)
    pool = pools(server.url)
    response, body = await fetch(pool, read_timeout=2.0)
    assert (response.status, body) == (200, b"ok")


async def test_non_chunked_transfer_encoding_is_read_until_close(serve, pools):
    server = await serve(replying(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabcdef",
        close=True))
    pool = pools(server.url)
    _, body = await fetch(pool, read_timeout=2.0)
    assert body == b"abcdef"


# --- the connection limit ----------------------------------------------------------------


async def test_limit_makes_a_third_request_wait_for_a_free_connection(serve, pools):
    server = await serve(held)
    pool = pools(server.url, limit=2)
    tasks = [asyncio.create_task(fetch(pool, f"/{i}")) for i in range(3)]
    try:
        await until(lambda: len(server.requests) == 2)
        await asyncio.sleep(0.05)
        assert len(server.requests) == 2 and len(server.peers) == 2
        assert pool.open_connections == 2
        assert not any(task.done() for task in tasks)
        first = server.requests[0]
        first.go.set()
        await until(lambda: len(server.requests) == 3)
        third = server.requests[2]
        assert third.target == "/2"
        assert third.conn == first.conn  # on the connection the first reply freed
        server.requests[1].go.set()
        third.go.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 2)
        assert [body for _, body in results] == [b"/0", b"/1", b"/2"]
        assert len(server.peers) == 2
        assert pool.open_connections == 2
    finally:
        await stop(*tasks)


async def test_cancelled_waiter_does_not_break_the_pool(serve, pools):
    server = await serve(held)
    pool = pools(server.url, limit=1)
    first = asyncio.create_task(fetch(pool, "/a"))
    waiter = asyncio.create_task(fetch(pool, "/b"))
    try:
        await until(lambda: len(server.requests) == 1)
        await asyncio.sleep(0.02)
        assert not waiter.done()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        server.hold = False
        server.requests[0].go.set()
        _, body = await asyncio.wait_for(first, 2)
        assert body == b"/a"
        _, body = await asyncio.wait_for(fetch(pool, "/c"), 2)
        assert body == b"/c"
        assert [r.target for r in server.requests] == ["/a", "/c"]
        assert len(server.peers) == 1 and pool.open_connections == 1
    finally:
        await stop(first, waiter)


async def test_woken_then_cancelled_waiter_passes_its_turn_on(serve, pools):
    server = await serve(echo)
    pool = pools(server.url, limit=1)
    response = await pool.request("GET", "/a", [], b"")  # holds the only connection
    second = asyncio.create_task(fetch(pool, "/b"))
    third = asyncio.create_task(fetch(pool, "/c"))
    try:
        await asyncio.sleep(0.02)
        assert not second.done() and not third.done()
        assert await response.read() == b"/a"
        response.release()  # wakes `second`...
        second.cancel()     # ...which is cancelled before it runs: `third` must get the turn
        _, body = await asyncio.wait_for(third, 2)
        assert body == b"/c"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert [r.target for r in server.requests] == ["/a", "/c"]
        assert len(server.peers) == 1
    finally:
        await stop(second, third)


async def test_limit_one_serialises_concurrent_requests_on_one_connection(serve, pools):
    server = await serve(echo)
    pool = pools(server.url, limit=1)
    results = await asyncio.wait_for(
        asyncio.gather(*[fetch(pool, f"/{i}") for i in range(10)]), 5)
    assert sorted(body for _, body in results) == sorted(f"/{i}".encode() for i in range(10))
    assert len(server.peers) == 1 and pool.open_connections == 1


async def test_waiter_is_woken_when_a_connect_fails(pools):
    pool = pools(f"http://127.0.0.1:{closed_port()}", limit=1)
    results = await asyncio.wait_for(
        asyncio.gather(fetch(pool), fetch(pool), return_exceptions=True), 0.5)
    assert [(type(r), getattr(r, "error", None)) for r in results] == [(HttpError, "connect")] * 2
    assert pool.open_connections == 0


# --- the RFC 9112 9.3.1 resend ------------------------------------------------------------


@pytest.mark.parametrize("method, body, resend", [
    ("GET", b"", None), ("HEAD", b"", None), ("OPTIONS", b"", None),
    ("PUT", b"data", True), ("DELETE", b"", True), ("POST", b"data", True),
])
async def test_a_read_or_a_request_allowed_to_is_resent_once_on_a_new_connection(
        serve, pools, method, body, resend):
    server = await serve(per_connection(answer_then_drop_the_next, echo))
    pool = pools(server.url)
    await fetch(pool, "/first")
    response, data = await fetch(pool, "/second", method=method, body=body, resend=resend)
    assert response.status == 200
    if method != "HEAD":
        assert data == b"/second" + (b":" + body if body else b"")
    assert len(server.peers) == 2
    assert [(r.conn, r.method, r.target, r.body) for r in server.requests] == [
        (0, "GET", "/first", b""), (0, method, "/second", body), (1, method, "/second", body)]
    assert pool.open_connections == 1


@pytest.mark.parametrize("method, body, resend", [
    ("POST", b"payload", None), ("PUT", b"payload", None), ("DELETE", b"", None),
    ("PATCH", b"payload", None), ("GET", b"", False),
])
async def test_other_requests_are_sent_exactly_once(serve, pools, method, body, resend):
    """A backend that applied a request and then died looks, from here, exactly like one
    that closed an idle connection: only reads are sent again unless the caller says so."""
    server = await serve(per_connection(answer_then_drop_the_next, echo))
    pool = pools(server.url)
    await fetch(pool, "/first")
    with pytest.raises(HttpError) as info:
        await fetch(pool, "/order", method=method, body=body, resend=resend)
    assert info.value.error == "protocol"
    assert info.value.unanswered is True
    assert info.value.maybe_applied is True
    sent = [r for r in server.requests if r.target == "/order"]
    assert [(r.conn, r.method, r.body) for r in sent] == [(0, method, body)]
    assert len(server.peers) == 1
    assert pool.open_connections == 0


async def test_resend_happens_only_once(serve, pools):
    async def drop(peer: Peer) -> None:
        await peer.read_request()

    server = await serve(per_connection(answer_then_drop_the_next, drop))
    pool = pools(server.url)
    await fetch(pool, "/first")
    with pytest.raises(HttpError) as info:
        await fetch(pool, "/second")
    assert info.value.error == "protocol"
    assert len(server.peers) == 2
    assert [(r.conn, r.target) for r in server.requests] == [(0, "/first"), (0, "/second"),
                                                            (1, "/second")]
    assert pool.open_connections == 0


async def test_no_resend_after_part_of_a_reply(serve, pools):
    async def partial(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        await peer.send(reply_for(request))
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-")

    server = await serve(per_connection(partial, echo))
    pool = pools(server.url)
    await fetch(pool, "/first")
    with pytest.raises(HttpError) as info:
        await fetch(pool, "/second")
    assert info.value.error == "protocol" and info.value.unanswered is False
    assert len(server.peers) == 1 and len(server.requests) == 2


async def test_no_resend_on_a_fresh_connection(serve, pools):
    async def drop(peer: Peer) -> None:
        await peer.read_request()

    server = await serve(per_connection(drop, echo))
    pool = pools(server.url)
    with pytest.raises(HttpError) as info:
        await fetch(pool, "/only")
    assert info.value.error == "protocol"
    assert len(server.peers) == 1 and len(server.requests) == 1


async def test_no_resend_of_a_streamed_body(serve, pools):
    server = await serve(per_connection(answer_then_drop_the_next, echo))
    pool = pools(server.url)
    await fetch(pool, "/first")
    with pytest.raises(HttpError) as info:
        await fetch(pool, "/put", method="PUT", body=aiter_of(b"a", b"b"))
    assert info.value.error == "protocol"
    assert len(server.peers) == 1
    assert [(r.method, r.body) for r in server.requests] == [("GET", b""), ("PUT", b"ab")]


# --- timeouts and connecting --------------------------------------------------------------


async def test_read_timeout_waiting_for_the_head(serve, pools):
    server = await serve(echo)
    pool = pools(server.url)
    with pytest.raises(HttpError) as info:
        await pool.request("GET", "/hang", [], b"", read_timeout=0.2)
    assert info.value.error == "timeout"
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)
    assert len(server.requests) == 1  # a timeout is not resent


async def test_read_timeout_waiting_for_the_body(serve, pools):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await peer.until_eof()

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"", read_timeout=0.2)
    assert response.status == 200
    with pytest.raises(HttpError) as info:
        await response.read()
    assert info.value.error == "timeout"
    response.close()
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)


async def test_connect_to_a_closed_port(pools):
    pool = pools(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(HttpError) as info:
        await pool.request("GET", "/", [], b"")
    assert info.value.error == "connect"
    assert pool.open_connections == 0


async def test_cancelled_request_drops_its_connection(serve, pools):
    server = await serve(echo)
    pool = pools(server.url)
    task = asyncio.create_task(pool.request("GET", "/hang", [], b""))
    await until(lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)


# --- bodies: limits and streaming ---------------------------------------------------------


@pytest.mark.parametrize("writes", ["one", "many"])
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_read_max_bytes(serve, pools, writes, framing):
    parts = [pattern(1000)] * 20
    body = b"".join(parts)
    if framing == "chunked":
        frames = [CHUNKED_HEAD] + [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]
    else:
        frames = [ok(body, send_body=False)] + parts

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            if writes == "one":
                await peer.send(b"".join(frames))
            else:
                await peer.send(*frames, gap=0.001)

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    with pytest.raises(HttpError) as info:
        await response.read(max_bytes=5000)
    assert info.value.error == "too_large"
    response.close()
    assert pool.open_connections == 0
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)

    response = await pool.request("GET", "/", [], b"")
    assert await response.read(max_bytes=len(body)) == body  # exactly at the limit
    response.release()
    assert pool.open_connections == 1


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_chunks_streams_a_body_larger_than_the_pause_threshold(serve, pools, framing):
    step = 50_000

    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            if request.target == "/small":
                await peer.send(reply_for(request))
            elif framing == "chunked":
                await peer.send(CHUNKED_HEAD)
                for i in range(0, len(BIG), step):
                    part = BIG[i:i + step]
                    await peer.send(b"%x\r\n%s\r\n" % (len(part), part))
                await peer.send(b"0\r\n\r\n")
            else:
                await peer.send(ok(BIG, send_body=False))
                for i in range(0, len(BIG), step):
                    await peer.send(BIG[i:i + step])

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/big", [], b"")
    await asyncio.sleep(0.1)  # nobody reads: the client must stop reading the socket
    assert response._buffered < len(BIG) // 2  # paused well before the whole body was in
    got = bytearray()
    async for chunk in response.chunks():
        got += chunk
    assert len(got) == len(BIG)
    assert hashlib.sha256(got).digest() == hashlib.sha256(BIG).digest()
    response.release()
    _, body = await fetch(pool, "/small", read_timeout=2.0)
    assert body == b"/small"
    assert len(server.peers) == 1  # the body was read to its exact end


async def body_ending_while_paused(peer: Peer) -> None:
    """A reply whose last bytes (the ones past the pause threshold) come in a write of
    their own, so the client pauses the socket and completes the body at once; then echo."""
    size = http1.PAUSE_AT + 1000
    body = pattern(size)
    first = http1.PAUSE_AT - 10
    await peer.read_request()
    await peer.send(ok(body, send_body=False) + body[:first], gap=0.05)
    await peer.send(body[first:])
    await echo(peer)


async def test_read_resumes_a_connection_paused_by_a_whole_buffered_body(serve, pools):
    server = await serve(body_ending_while_paused)
    pool = pools(server.url)
    response = await pool.request("GET", "/big", [], b"")
    await asyncio.sleep(0.2)  # the whole body arrives before the caller reads it
    assert await response.read() == pattern(http1.PAUSE_AT + 1000)
    response.release()
    _, body = await fetch(pool, "/second", read_timeout=0.5)
    assert body == b"/second"
    assert len(server.peers) == 1


async def test_chunks_leaves_no_paused_connection_in_the_pool(serve, pools):
    server = await serve(body_ending_while_paused)
    pool = pools(server.url)
    response = await pool.request("GET", "/big", [], b"")
    await asyncio.sleep(0.2)  # the whole body arrives before the caller reads it
    got = b"".join([chunk async for chunk in response.chunks()])
    assert got == pattern(http1.PAUSE_AT + 1000)
    response.release()
    assert pool.open_connections == 1
    _, body = await fetch(pool, "/second", read_timeout=0.5)
    assert body == b"/second"


# --- resets ---------------------------------------------------------------------------------


RESET_REPLIES = {
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"a" * 1000,
    "chunked": CHUNKED_HEAD + b"3e8\r\n" + b"a" * 1000 + b"\r\n3e8\r\n" + b"a" * 10,
    "close-delimited": b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 1000,
}


@pytest.mark.parametrize("reply", RESET_REPLIES.values(), ids=RESET_REPLIES.keys())
async def test_reset_mid_body_is_a_protocol_error(serve, pools, reply):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(reply, gap=0.05)
        peer.reset()

    server = await serve(handler)
    pool = pools(server.url)
    with pytest.raises(HttpError) as info:
        await fetch(pool, read_timeout=2.0)
    assert info.value.error == "protocol"
    assert pool.open_connections == 0
    assert len(server.peers) == 1


async def test_clean_close_mid_body_is_a_protocol_error(serve, pools):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    with pytest.raises(HttpError) as info:
        await response.read()
    assert info.value.error == "protocol"
    response.release()
    assert pool.open_connections == 0


# --- closing the pool -----------------------------------------------------------------------


async def test_pool_close_closes_every_connection(serve, pools):
    server = await serve(echo)
    pool = pools(server.url, limit=3)
    one = await pool.request("GET", "/one", [], b"")
    two = await pool.request("GET", "/two", [], b"")  # a second connection: /one is busy
    in_flight = asyncio.create_task(pool.request("GET", "/hang", [], b""))  # and a third
    try:
        await until(lambda: len(server.requests) == 3)
        for response in (one, two):
            await response.read()
            response.release()
        assert len(server.peers) == 3
        assert pool.open_connections == 3  # two idle, one waiting for its reply
        await pool.close()
        assert pool.open_connections == 0
        with pytest.raises(HttpError):
            await asyncio.wait_for(in_flight, 2)
        for peer in server.peers:
            await asyncio.wait_for(peer.eof.wait(), 2)
        with pytest.raises(HttpError) as info:
            await pool.request("GET", "/after", [], b"")
        assert info.value.error == "connect"
        assert len(server.peers) == 3 and len(server.requests) == 3
    finally:
        await stop(in_flight)


async def test_pool_close_wakes_waiting_requests(serve, pools):
    server = await serve(echo)
    pool = pools(server.url, limit=1)
    response = await pool.request("GET", "/held", [], b"")
    waiting = asyncio.create_task(fetch(pool, "/waiting"))
    try:
        await asyncio.sleep(0.02)
        assert not waiting.done()
        await pool.close()
        with pytest.raises(HttpError) as info:
            await asyncio.wait_for(waiting, 2)
        assert info.value.error == "connect"
        response.release()
        assert pool.open_connections == 0
        assert len(server.requests) == 1
    finally:
        await stop(waiting)


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\n\r\n"],
                         ids=["sized", "close-delimited"])
async def test_pool_close_fails_a_body_being_read(serve, pools, head):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(head + b"partial")
        await peer.until_eof()

    server = await serve(handler)
    pool = pools(server.url)
    response = await pool.request("GET", "/", [], b"")
    reader = asyncio.create_task(response.read())
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(HttpError) as info:  # never the partial body as if it were whole
        await asyncio.wait_for(reader, 2)
    assert info.value.error == "protocol"
    await asyncio.wait_for(server.peers[0].eof.wait(), 2)


# --- no leaked connections ----------------------------------------------------------------


async def test_open_connections_return_to_the_right_count_after_failures(serve, pools):
    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            target = request.target
            if target == "/garbage":
                await peer.send(b"NOT HTTP\r\n\r\n")
            elif target == "/hang":
                await peer.until_eof()
                return
            elif target == "/reset":
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nab", gap=0.02)
                peer.reset()
                return
            elif target == "/big":
                await peer.send(ok(b"z" * 10_000))
            else:
                await peer.send(reply_for(request))

    server = await serve(handler)
    pool = pools(server.url, limit=3)
    await fetch(pool, "/good")
    assert pool.open_connections == 1
    for target in ("/garbage", "/hang", "/reset"):
        with pytest.raises(HttpError):
            await fetch(pool, target, read_timeout=0.2)
        assert pool.open_connections == 0, target
        await fetch(pool, "/good")
        assert pool.open_connections == 1, target
    response = await pool.request("GET", "/big", [], b"")
    with pytest.raises(HttpError):
        await response.read(max_bytes=100)
    response.close()
    assert pool.open_connections == 0
    with pytest.raises(HttpError):
        await pool.request("GET", "/bad target", [], b"")
    assert pool.open_connections == 0
    # three at once, all good: three connections, all kept
    await asyncio.gather(*[fetch(pool, f"/{i}") for i in range(3)])
    assert pool.open_connections == 3
    # three at once, all failing: none kept
    results = await asyncio.gather(*[fetch(pool, "/garbage") for _ in range(3)],
                                   return_exceptions=True)
    assert all(isinstance(r, HttpError) and r.error == "protocol" for r in results)
    assert pool.open_connections == 0


# --- on_done: the end of a reply, reported from the connection --------------------------


async def test_on_done_is_called_once_when_the_last_byte_is_in(serve, pools):
    last_part = asyncio.Event()

    async def slow_body(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await last_part.wait()
        await peer.send(b"0\r\n\r\n")
        await peer.until_eof()

    server = await serve(slow_body)
    pool = pools(server.url)
    done: list[bytes] = []
    response = await pool.request("GET", "/", [], b"", read_timeout=2,
                                  on_done=lambda: done.append(b"done"))
    body = [chunk async for chunk in _first(response.chunks())]
    assert body == [b"abc"] and done == []          # the head and a part: not done yet
    last_part.set()
    await until(lambda: bool(done))
    assert await response.read() == b""             # everything was already yielded
    response.release()
    assert done == [b"done"]


async def test_on_done_is_not_called_for_a_reply_that_never_ends(serve, pools):
    server = await serve(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                                  close=True))
    pool = pools(server.url)
    done: list[str] = []
    with pytest.raises(HttpError) as failed:
        response = await pool.request("GET", "/", [], b"", read_timeout=2,
                                      on_done=lambda: done.append("done"))
        try:
            await response.read()
        finally:
            response.close()
    assert failed.value.error == "protocol" and done == []


async def _first(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The first chunk of a stream, leaving the rest unread."""
    async for chunk in chunks:
        yield chunk
        return
