"""A scriptable raw HTTP/1.1 server for tests that must know the exact bytes on the wire,
both ways: what the client wrote (recorded per connection) and what it is given (chunked
bodies with extensions and trailers, bodies in many small writes, interim 1xx replies,
malformed heads, resets, ...). Used against `shadow.http1` directly and behind the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from shadow.http1 import Pool

@dataclass
class Request:
    """One request as the server read it off the wire."""

    conn: int               # index of the connection it came on
    head: bytes             # request line and header lines, without the blank line
    body: bytes             # the body, de-chunked
    raw: bytes              # every byte read for it, framing included
    go: asyncio.Event = field(default_factory=asyncio.Event)  # for handlers that hold replies

    @property
    def method(self) -> str:
        return self.head.split(b" ", 1)[0].decode()

    @property
    def target(self) -> str:
        return self.head.split(b"\r\n", 1)[0].split(b" ")[1].decode()

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        out = []
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            out.append((name, value.strip(b" ")))
        return out

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Peer:
    """The server's side of one accepted connection; records every byte it reads."""

    def __init__(self, server: RawServer, index: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.index = index
        self.reader = reader
        self.writer = writer
        self.raw = bytearray()
        self.eof = asyncio.Event()  # the client hung up (EOF, or a reset while we wrote)

    async def _until(self, sep: bytes) -> bytes:
        try:
            data = await self.reader.readuntil(sep)
        except asyncio.IncompleteReadError as exc:
            self.raw += exc.partial
            raise
        self.raw += data
        return data

    async def _exactly(self, n: int) -> bytes:
        try:
            data = await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            self.raw += exc.partial
            raise
        self.raw += data
        return data

    async def read_request(self) -> Request | None:
        """The next request (body included), or None at a clean EOF."""
        start = len(self.raw)
        try:
            head = await self._until(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            self.eof.set()
            return None
        head = head[:-4]
        lines = head.split(b"\r\n")[1:]
        fields = {n.strip().lower(): v.strip() for n, _, v in (x.partition(b":") for x in lines)}
        body = bytearray()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await self._until(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await self._until(b"\r\n") != b"\r\n":
                        pass  # trailers
                    break
                body += (await self._exactly(size + 2))[:-2]
        elif b"content-length" in fields:
            body += await self._exactly(int(fields[b"content-length"]))
        request = Request(self.index, head, bytes(body), bytes(self.raw[start:]))
        self.server.requests.append(request)
        return request

    async def send(self, *parts: bytes, gap: float | None = None) -> None:
        """Write each part separately (sleeping `gap` seconds after each when given)."""
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            if gap is not None:
                await asyncio.sleep(gap)

    async def until_eof(self) -> None:
        """Read (and record) everything until the client closes the connection."""
        while data := await self.reader.read(65536):
            self.raw += data
        self.eof.set()

    def reset(self) -> None:
        """Close with a TCP reset instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """A TCP server on loopback port 0; each accepted connection runs `handler(peer)` and
    is closed (gracefully, flushing what was written) when the handler returns."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.host = host
        self.port = 0
        self.hold = True  # read by handlers that hold replies until `Request.go` is set
        self.peers: list[Peer] = []
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes go out alone
        peer = Peer(self, len(self.peers), reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            peer.eof.set()  # the client closed the connection under us
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a broken handler: reported by the fixture
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in self.peers:
            peer.writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


@pytest.fixture
async def serve():
    """serve(handler, host='127.0.0.1') -> a started RawServer, closed at teardown."""
    servers: list[RawServer] = []

    async def start(handler: Handler, host: str = "127.0.0.1") -> RawServer:
        server = RawServer(handler, host)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.close()
    errors = [exc for server in servers for exc in server.errors]
    assert not errors, f"a server handler failed: {errors!r}"


@pytest.fixture
async def pools():
    """pools(url, limit=4, connect_timeout=2.0, keepalive=15.0) -> a Pool, closed at teardown."""
    made: list[Pool] = []

    def make(url: str, *, limit: int = 4, connect_timeout: float = 2.0,
             keepalive: float = 15.0) -> Pool:
        pool = Pool(url, limit=limit, connect_timeout=connect_timeout, keepalive=keepalive)
        made.append(pool)
        return pool

    try:
        yield make
    finally:
        for pool in made:
            await pool.close()


# --- helpers ----------------------------------------------------------------------------


def ok(body: bytes = b"ok", *headers: str, status: str = "200 OK", send_body: bool = True) -> bytes:
    """A reply framed by Content-Length."""
    head = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body if send_body else b"")


def chunked(*parts: bytes, trailers: bytes = b"") -> bytes:
    """A chunked body (no extensions) ending with `trailers` (CRLF-terminated lines)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n" + trailers + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def reply_for(request: Request) -> bytes:
    """The echo reply: the target (and body) back, no body bytes for HEAD."""
    body = request.target.encode() + (b":" + request.body if request.body else b"")
    return ok(body, send_body=request.method != "HEAD")


async def echo(peer: Peer) -> None:
    """Answers each request with `reply_for`, keeping the connection open; a target
    starting with /hang is never answered (the connection is read until EOF)."""
    while (request := await peer.read_request()) is not None:
        if request.target.startswith("/hang"):
            await peer.until_eof()
            return
        await peer.send(reply_for(request))


async def held(peer: Peer) -> None:
    """Like `echo`, but while `server.hold` each reply waits for its `Request.go`."""
    while (request := await peer.read_request()) is not None:
        if peer.server.hold:
            await request.go.wait()
        await peer.send(reply_for(request))


def replying(*replies: bytes, close: bool = False) -> Handler:
    """Each request on a connection gets the next of `replies` (the last repeats); with
    `close` the server closes the connection after each reply, else it reads on."""
    async def handler(peer: Peer) -> None:
        n = 0
        while await peer.read_request() is not None:
            await peer.send(replies[min(n, len(replies) - 1)])
            n += 1
            if close:
                return
    return handler


def per_connection(*handlers: Handler) -> Handler:
    """Connection i is handled by handlers[i] (the last one for the rest)."""
    async def handler(peer: Peer) -> None:
        await handlers[min(peer.index, len(handlers) - 1)](peer)
    return handler


async def answer_then_drop_the_next(peer: Peer) -> None:
    """Answers one request, then reads the next in full and closes without a byte."""
    request = await peer.read_request()
    assert request is not None
    await peer.send(reply_for(request))
    await peer.read_request()
