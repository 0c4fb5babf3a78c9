"""The client gets exactly what the primary said, down to the bytes, or an error it can
detect (DESIGN.md promise 1): raw sockets on both sides of the proxy.

Header values and reason phrases that are not UTF-8 pass through as bytes, both ways; a
304 keeps its Content-Length; a transfer coding the proxy cannot name to the client is
refused with a 502; trailers are dropped (documented); and a reply the primary cuts after
its head reaches HTTP/1.0 and HTTP/1.1 clients as a reset or a short Content-Length,
never as a clean end.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest

from tests.faults import closed_port
from tests.rawserver import Peer, chunked, echo, replying, serve  # noqa: F401
from tests.support import make_config, running

TIMEOUT = 10.0  # seconds: a generous bound on one raw exchange; only a hang reaches it


async def exchange(port: int, data: bytes) -> tuple[bytes, bytes, bool]:
    """Send `data` on a new connection and read until the proxy ends it. Returns (head,
    body, reset): `reset` is True when the connection ended with a TCP reset."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = bytearray()
    reset = False
    try:
        writer.write(data)
        async with asyncio.timeout(TIMEOUT):
            while True:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:
                    reset = True
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        writer.transport.abort()
    head, _, body = bytes(out).partition(b"\r\n\r\n")
    return head, body, reset


def header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


@pytest.fixture
async def through(serve, tmp_path):
    """through(primary_handler, **config) -> a running proxy in legacy-only mode whose
    primary is a raw server running `primary_handler` on each connection."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(handler, **overrides):
            primary = await serve(handler)
            unused = f"http://127.0.0.1:{closed_port()}"  # legacy-only: never called
            config = make_config(tmp_path, primary.url, unused,
                                 **{"mode": "legacy-only", **overrides})
            return await stack.enter_async_context(running(config)), primary

        yield start


# --- header bytes -------------------------------------------------------------------------


@pytest.mark.parametrize("framing", [b"Content-Length: 2\r\n\r\nok",
                                     b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"ok")])
async def test_non_utf8_reason_and_header_bytes_reach_the_client_unchanged(through, framing):
    reply = b"HTTP/1.1 299 Caf\xe9 cr\xe8me\r\nX-Name: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n" + framing
    runtime, _ = await through(replying(reply, close=True))
    head, body, reset = await exchange(runtime.proxy_port,
                                       b"GET /x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 299 Caf\xe9 cr\xe8me\r\n"), head
    assert header(head, b"X-Name") == b"caf\xe9"
    assert header(head, b"X-Utf8") == b"caf\xc3\xa9"
    assert not reset
    assert body in (b"ok", chunked(b"ok"))


async def test_non_utf8_request_header_bytes_reach_both_backends_unchanged(serve, tmp_path):
    legacy = await serve(echo)
    candidate = await serve(echo)
    config = make_config(tmp_path, legacy.url, candidate.url)
    async with running(config) as runtime:
        head, _, _ = await exchange(
            runtime.proxy_port,
            b"GET /x HTTP/1.1\r\nHost: p\r\nX-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n"
            b"Connection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        async with asyncio.timeout(TIMEOUT):
            while not candidate.requests:
                await asyncio.sleep(0.01)
    for backend in (legacy, candidate):
        (request,) = backend.requests
        assert request.header(b"X-Latin") == b"caf\xe9"
        assert request.header(b"X-Utf8") == b"caf\xc3\xa9"


# --- heads without a body -----------------------------------------------------------------


async def test_a_304_keeps_its_content_length_and_the_connection_stays_usable(through):
    not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n'
    runtime, _ = await through(replying(not_modified))
    request = b"GET /x HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"v1\"\r\n\r\n"
    head, rest, reset = await exchange(runtime.proxy_port,
                                       request + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert header(head, b"Content-Length") == b"1234"
    assert header(head, b"ETag") == b'"v1"'
    # No body was sent after the first head: the second reply follows at once.
    assert rest.startswith(b"HTTP/1.1 304 Not Modified\r\n"), rest
    assert not reset


async def test_a_head_reply_keeps_its_headers(through):
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nX-Name: caf\xe9\r\n\r\n"
    runtime, _ = await through(replying(reply, close=True))
    head, body, _ = await exchange(runtime.proxy_port,
                                   b"HEAD /x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    assert header(head, b"Content-Length") == b"4096"
    assert header(head, b"X-Name") == b"caf\xe9"
    assert body == b""


# --- transfer codings and trailers --------------------------------------------------------


@pytest.mark.parametrize("te", [b"gzip, chunked", b"gzip"])
async def test_a_transfer_coding_other_than_chunked_is_refused_with_a_502(through, te):
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + te + b"\r\n\r\n" + (
        chunked(b"\x1f\x8b-gzip-bytes") if te.endswith(b"chunked") else b"\x1f\x8b-gzip-bytes")
    runtime, _ = await through(replying(reply, close=True))
    head, body, _ = await exchange(runtime.proxy_port,
                                   b"GET /x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502"), head
    error = orjson.loads(body)
    assert error["error"] == "primary_protocol"
    assert "gzip" in error["message"]


async def test_trailers_are_dropped_and_the_body_arrives_whole(through):
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             + chunked(b"hello ", b"world", trailers=b"X-Checksum: 42\r\n"))
    runtime, _ = await through(replying(reply, close=True))
    head, body, reset = await exchange(runtime.proxy_port,
                                       b"GET /x HTTP/1.0\r\nHost: p\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert body == b"hello world" and not reset
    assert b"X-Checksum" not in head + body


# --- a reply cut after its head -----------------------------------------------------------


def cut_after(head: bytes, *parts: bytes):
    """A primary that sends `head` and `parts`, then resets the connection."""
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(head, *parts, gap=0.05)
        peer.reset()
    return handler


CHUNKED_CUT = cut_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"1000\r\n" + b"a" * 4096 + b"\r\n", b"1000\r\n" + b"b" * 100)
SIZED_CUT = cut_after(b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n", b"c" * 5000)


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
@pytest.mark.parametrize("primary", [CHUNKED_CUT, SIZED_CUT], ids=["unsized", "sized"])
async def test_a_cut_reply_is_an_error_every_client_can_detect(through, version, primary):
    runtime, _ = await through(primary, mirror={"max_reply_bytes": 1024})
    head, body, reset = await exchange(
        runtime.proxy_port, b"GET /cut HTTP/" + version + b"\r\nHost: p\r\n\r\n")
    assert head.startswith(b"HTTP/" + version + b" 200"), head
    length = header(head, b"Content-Length")
    if primary is SIZED_CUT:
        assert length == b"65536"
    complete = (length is not None and len(body) == int(length)) or (
        header(head, b"Transfer-Encoding") == b"chunked" and body.endswith(b"0\r\n\r\n"))
    assert reset or (length is not None and len(body) < int(length)), (head, len(body))
    assert not complete
