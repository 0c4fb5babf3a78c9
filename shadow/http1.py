"""A lean HTTP/1.1 client: one pool of keep-alive connections per backend.

Every proxied exchange makes two backend requests, so the client's own cost is paid
twice per request. aiohttp's `ClientSession.request` spends most of its time on options
this proxy never uses (cookies, redirects, proxies, auth, tracing, decompression); under
load it was about half of the proxy's CPU (`python -m bench.profile_proxy`). This client
does only what a reverse proxy needs, on a plain `asyncio.Protocol`:

  - the request head is written as the caller gives it (plus `Host` and the body's
    framing); CR, LF or NUL in any part of it is refused before anything is sent;
  - the reply is parsed strictly: a status line, headers (names must be tokens, no
    obsolete line folding, at most `MAX_HEAD` bytes), then a body framed by
    Content-Length, chunked transfer coding, or the end of the connection; replies to
    HEAD and 1xx/204/304 replies have none; interim 1xx replies are skipped;
  - a connection is reused only after a reply read to its exact end on a keep-alive
    connection, and idles at most `keepalive` seconds;
  - a request is sent once. The one exception is RFC 9112 section 9.3.1: an idempotent
    request on a reused connection that the server closed before sending a single byte
    is sent again, once, on a new connection (the server had closed an idle connection
    while the request was on its way; it never saw it).

Failures are `HttpError`s with a class: 'connect', 'timeout', 'protocol', 'too_large'.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

MAX_HEAD = 65536
"""Bytes a reply's status line and headers may take."""

_PAUSE_AT = 1 << 18  # buffered body bytes of a streamed reply before the socket is paused
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HEADER_BLOCK = re.compile(rb"(?:" + _TOKEN + rb":[^\r\n\x00]*\r\n)*")
_HEADER = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\r\n\x00]*?)[ \t]*\r\n")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Where a reply is in its parse.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class HttpError(Exception):
    """A backend gave no usable reply; `error` is the class ('connect', 'timeout', ...)."""

    def __init__(self, error: str, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.error = error
        self.unanswered = unanswered  # the connection closed before any byte of a reply


class Response:
    """One reply on one connection: its head once `Pool.request` returns, its body read
    with `read()` or `chunks()`. Always end it with `release()` or `close()`."""

    __slots__ = ("status", "reason", "version", "raw_headers", "content_length", "keep_alive",
                 "_conn", "_head_only", "_timeout", "_state", "_remaining", "_chunks",
                 "_buffered", "_whole", "_error", "_waiter", "_received", "_ended", "_on_done")

    def __init__(self, conn: _Connection, method: str, timeout: float | None,
                 on_done: Callable[[], None] | None = None) -> None:
        self._conn = conn
        self._on_done = on_done
        self._head_only = method == "HEAD"
        self._timeout = timeout
        self._state = _HEAD
        self._remaining = 0
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._whole = False
        self._error: HttpError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._received = False
        self._ended = False
        self.status = 0
        self.reason = ""
        self.version = 1
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.keep_alive = True

    # --- the reader's side ----------------------------------------------------------

    async def _wait(self) -> None:
        self._waiter = waiter = self._conn.loop.create_future()
        try:
            if self._timeout is None:
                await waiter
            else:
                async with asyncio.timeout(self._timeout):
                    await waiter
        except TimeoutError:
            raise HttpError("timeout", "no reply within the timeout") from None
        finally:
            self._waiter = None

    async def _head(self) -> None:
        while self._state == _HEAD:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read(self, max_bytes: int | None = None) -> bytes:
        """The whole body; HttpError('too_large') once it passes `max_bytes`."""
        self._whole = True
        self._conn.resume()
        while self._state != _DONE:
            if self._error is not None:
                raise self._error
            if max_bytes is not None and self._buffered > max_bytes:
                raise HttpError("too_large", "reply larger than the limit")
            await self._wait()
        if max_bytes is not None and self._buffered > max_bytes:
            raise HttpError("too_large", "reply larger than the limit")
        chunks = self._chunks
        if len(chunks) == 1:
            return chunks.popleft()
        data = b"".join(chunks)
        chunks.clear()
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (the socket is paused while too much is buffered)."""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                yield chunk
            if self._state == _DONE:
                return
            if self._error is not None:
                raise self._error
            self._conn.resume()
            await self._wait()

    def release(self) -> None:
        """Done with the reply: its connection goes back to the pool if it can be reused."""
        if not self._ended:
            self._ended = True
            self._conn.pool._release(self._conn, self._state == _DONE and self.keep_alive
                                     and self._error is None)

    def close(self) -> None:
        """Done with the reply, not read to its end: its connection is closed."""
        if not self._ended:
            self._ended = True
            self._conn.pool._release(self._conn, False)

    # --- the connection's side ------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ended_on_wire(self) -> None:
        """The whole reply has arrived: tell `on_done` now, before the reader runs."""
        callback, self._on_done = self._on_done, None
        if callback is not None:
            callback()

    def _fail(self, error: HttpError) -> None:
        if self._error is None and self._state != _DONE:
            self._error = error
        self.keep_alive = False
        self._wake()

    def _body(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _PAUSE_AT and not self._whole:
            self._conn.pause()

    def _feed(self, buf: bytearray) -> None:
        """Parse what `buf` holds, consuming it. Raises HttpError on a malformed reply."""
        self._received = True
        while buf:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) >= MAX_HEAD + 4:  # no end can start within the limit
                        raise HttpError("protocol", "reply head too large")
                    return
                if end > MAX_HEAD:
                    raise HttpError("protocol", "reply head too large")
                head = bytes(buf[:end])
                del buf[:end + 4]
                self._parse_head(head)
            elif state == _LENGTH:
                take = self._remaining
                if len(buf) <= take:
                    take = len(buf)
                    self._body(bytes(buf))
                    buf.clear()
                else:
                    self._body(bytes(buf[:take]))
                    del buf[:take]
                self._remaining -= take
                if not self._remaining:
                    self._state = _DONE
            elif state == _CHUNK_SIZE or state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 4096:
                        raise HttpError("protocol", "chunk line too long")
                    return
                line = bytes(buf[:end])
                del buf[:end + 2]
                if state == _TRAILERS:
                    if not line:
                        self._state = _DONE
                    continue
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size):
                    raise HttpError("protocol", "invalid chunk size")
                self._remaining = int(size, 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            elif state == _CHUNK_DATA:
                take = min(self._remaining, len(buf))
                self._body(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if not self._remaining:
                    self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise HttpError("protocol", "chunk not followed by CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _UNTIL_CLOSE:
                self._body(bytes(buf))
                buf.clear()
            else:  # _DONE: bytes after the end of the reply; the connection is not reused
                self.keep_alive = False
                buf.clear()

    def _parse_head(self, head: bytes) -> None:
        end = head.find(b"\r\n")
        match = _STATUS.fullmatch(head if end < 0 else head[:end])
        if match is None:
            raise HttpError("protocol", "invalid status line")
        status = int(match.group(2))
        block = b"" if end < 0 else head[end + 2:] + b"\r\n"
        # One pass validates every line (token name, a colon, no CR, LF or NUL in the
        # value, no obsolete folding); a second splits them.
        if _HEADER_BLOCK.fullmatch(block) is None:
            raise HttpError("protocol", "invalid header line")
        headers = _HEADER.findall(block)
        lengths = set()
        chunked = False
        coded = False
        connection = b""
        for name, value in headers:
            low = name.lower()
            if low == b"content-length":
                lengths.add(value)
            elif low == b"transfer-encoding":
                coded = True
                chunked = value.rsplit(b",", 1)[-1].strip(b" \t").lower() == b"chunked"
            elif low == b"connection":
                connection = connection + b"," + value.lower()
        if 100 <= status < 200 and status != 101:
            return  # an interim reply: the real one follows
        self.status = status
        self.version = int(match.group(1))
        reason = match.group(3)
        if reason == b"OK":
            self.reason = "OK"
        else:
            try:
                self.reason = (reason or b"").decode("utf-8")
            except UnicodeDecodeError:
                self.reason = reason.decode("latin-1")
        self.raw_headers = headers
        if connection:
            tokens = {t.strip() for t in connection.split(b",")}
            self.keep_alive = (b"close" not in tokens and status != 101
                               and (self.version == 1 or b"keep-alive" in tokens))
        else:
            self.keep_alive = self.version == 1 and status != 101
        if len(lengths) > 1:
            raise HttpError("protocol", "conflicting Content-Length headers")
        if lengths:
            length = next(iter(lengths))
            if not length.isdigit() or len(length) > 18:
                raise HttpError("protocol", "invalid Content-Length")
            self.content_length = int(length)
        if self._head_only or status in (204, 304) or status < 200:
            self._state = _DONE
        elif chunked:
            self.content_length = None
            self._state = _CHUNK_SIZE
        elif coded:  # RFC 9112 6.3: Transfer-Encoding overrides Content-Length
            self.content_length = None
            self.keep_alive = False
            self._state = _UNTIL_CLOSE
        elif self.content_length is not None:
            self._remaining = self.content_length
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self.keep_alive = False
            self._state = _UNTIL_CLOSE
        self._wake()

    def _closed(self, exc: BaseException | None) -> None:
        """The connection ended (EOF, reset, or closed by us)."""
        self.keep_alive = False
        if self._error is not None:
            return
        if self._state == _UNTIL_CLOSE and exc is None and not self._conn.closed_by_us:
            self._state = _DONE
            self._ended_on_wire()
            self._wake()
        elif self._state != _DONE:
            self._fail(HttpError("protocol", "connection closed before the reply ended",
                                 unanswered=not self._received))


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection to a backend and the reply being read on it."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.closed_by_us = False
        self.reused = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._paused = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: this connection cannot be trusted
            self.close()
            return
        buf = self._buf
        buf += data
        try:
            response._feed(buf)
        except HttpError as exc:
            response._fail(exc)
            self.close()
            return
        if response._state == _DONE:
            response._ended_on_wire()
        if response._state != _HEAD or response.status:
            response._wake()

    def eof_received(self) -> bool:
        self.closed = True
        if self.response is not None:
            self.response._closed(None)
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            self.response._closed(exc)
        self._wake_writer()
        self.pool._lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self) -> None:
        if self.closed:
            raise HttpError("protocol", "connection closed while sending the request",
                            unanswered=self.response is not None and not self.response._received)
        if self._write_paused:
            self._drained = self.loop.create_future()
            await self._drained

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed_by_us = True
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Pool:
    """Keep-alive connections to one backend, at most `limit` at a time."""

    def __init__(self, url: str, *, limit: int, connect_timeout: float,
                 keepalive: float = 15.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        tls = parts.scheme == "https"
        default = 443 if tls else 80
        self.port = parts.port or default
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default else f"{host}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context() if tls else None
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._idle: deque[_Connection] = deque()
        self._all: set[_Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | AsyncIterator[bytes], *,
                      read_timeout: float | None = None,
                      on_done: Callable[[], None] | None = None) -> Response:
        """Send a request; return once the reply's head is in. `read_timeout` bounds each
        wait for bytes from the backend (None: the caller bounds the whole exchange).
        `on_done` is called as soon as the whole reply has arrived, from the connection's
        callback: one loop turn before the reader can see it (it must not raise)."""
        head = self._head(method, target, headers, body)
        retried = False
        while True:
            conn = await self._acquire()
            response = Response(conn, method, read_timeout, on_done)
            conn.response = response
            try:
                if conn.closed:
                    raise HttpError("protocol", "connection closed", unanswered=True)
                transport = conn.transport
                assert transport is not None
                if isinstance(body, (bytes, bytearray)):
                    if len(body) < 16384:
                        transport.write(head + body if body else head)
                    else:
                        transport.writelines((head, body))
                else:
                    transport.write(head)
                    await self._send_chunked(conn, body)
                await response._head()
                return response
            except HttpError as exc:
                response.close()
                if (exc.unanswered and conn.reused and not retried and method in IDEMPOTENT
                        and isinstance(body, (bytes, bytearray))):
                    retried = True
                    continue
                raise
            except BaseException:
                response.close()
                raise

    @staticmethod
    async def _send_chunked(conn: _Connection, body: AsyncIterator[bytes]) -> None:
        transport = conn.transport
        assert transport is not None
        async for chunk in body:
            if chunk:
                transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                await conn.drain()
        transport.write(b"0\r\n\r\n")
        await conn.drain()

    def _head(self, method: str, target: str, headers: list[tuple[str, str]],
              body: bytes | AsyncIterator[bytes]) -> bytes:
        if _METHOD.fullmatch(method) is None or " " in target or not target.startswith("/"):
            raise HttpError("protocol", "invalid request line")
        lines = [f"{method} {self.prefix}{target} HTTP/1.1\r\n", f"Host: {self.host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        if isinstance(body, (bytes, bytearray)):
            if body or method in _BODY_METHODS:
                lines.append(f"Content-Length: {len(body)}\r\n")
        else:
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        text = "".join(lines)
        # Each line we wrote ends in CRLF; any other CR, LF or NUL came from a caller's value.
        if text.count("\n") != len(lines) or text.count("\r") != len(lines) or "\x00" in text:
            raise HttpError("protocol", "CR, LF or NUL in the request head")
        return text.encode("utf-8")

    async def _acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise HttpError("connect", "the pool is closed")
            while self._idle:
                conn = self._idle.pop()  # the most recently used: least likely to be stale
                if not conn.closed and loop.time() - conn.idle_since < self.keepalive:
                    conn.reused = True
                    return conn
                self._drop(conn)
            if len(self._all) < self.limit:
                return await self._connect(loop)
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the turn on
                raise

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        conn = _Connection(self)
        self._all.add(conn)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(
                    lambda: conn, self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None)
        except TimeoutError:
            self._drop(conn)
            self._wake_one()
            raise HttpError("timeout", "connecting timed out") from None
        except OSError as exc:
            self._drop(conn)
            self._wake_one()
            raise HttpError("connect", f"cannot connect: {exc}") from None
        except BaseException:
            self._drop(conn)
            self._wake_one()
            raise
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        conn.response = None
        if reusable and not conn.closed and not self._closed and not conn._buf:
            conn.resume()
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            self._drop(conn)
        self._wake_one()

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        conn.response = None
        self._all.discard(conn)

    def _lost(self, conn: _Connection) -> None:
        """A connection closed on its own (by the backend, or after an error)."""
        if conn.response is None:  # idle: forget it now
            if conn in self._all:
                self._all.discard(conn)
                try:
                    self._idle.remove(conn)
                except ValueError:
                    pass
                self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection; requests in flight fail."""
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        await asyncio.sleep(0)  # let the transports finish closing
