"""A lean HTTP/1.1 client: one pool of keep-alive connections per backend.

Every proxied exchange makes two backend requests, so the client's own cost is paid
twice per request. aiohttp's `ClientSession.request` spends most of its time on options
this proxy never uses (cookies, redirects, proxies, auth, tracing, decompression); under
load it was about half of the proxy's CPU (`python -m bench.profile_proxy`). This client
does only what a reverse proxy needs, on a plain `asyncio.Protocol`:

  - the request head is written as the caller gives it (plus `Host` and the body's
    framing); CR, LF or NUL in any part of it is refused before anything is sent;
  - the reply is parsed strictly (`shadow.http1_reply`);
  - a connection is reused only after a reply read to its exact end on a keep-alive
    connection, and idles at most `keepalive` seconds;
  - a request is sent once. The one exception is RFC 9112 section 9.3.1: a request on a
    reused connection that the server closed before sending a single byte is sent again,
    once, on a new connection (the server had most likely closed an idle connection while
    the request was on its way). "Most likely" is not "surely": the server may have
    applied it and died before answering, so by default only `RESENDABLE` methods (GET,
    HEAD, OPTIONS) are resent; the caller may widen or narrow that per request. A request
    that was not resent fails with `HttpError.maybe_applied` set.

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

from shadow.http1_reply import MAX_HEAD, PAUSE_AT, HttpError, RawText, Response, text_bytes

__all__ = ["MAX_HEAD", "PAUSE_AT", "HttpError", "Pool", "RESENDABLE", "Response"]

RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods resent after a dropped reused connection unless the caller says otherwise: the
ones that read. PUT and DELETE are idempotent by definition, not by every app's code."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


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
            response._data_in(buf)
        except HttpError as exc:
            response._fail(exc)
            self.close()

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
                      on_done: Callable[[], None] | None = None,
                      resend: bool | None = None) -> Response:
        """Send a request; return once the reply's head is in. `read_timeout` bounds each
        wait for bytes from the backend (None: the caller bounds the whole exchange).
        `on_done` is called as soon as the whole reply has arrived, from the connection's
        callback: one loop turn before the reader can see it (it must not raise).
        `resend`: may the request be sent again after a dropped reused connection (None:
        only if its method is in `RESENDABLE`)."""
        if resend is None:
            resend = method in RESENDABLE
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
                if exc.unanswered and conn.reused and not retried:
                    if resend and isinstance(body, (bytes, bytearray)):
                        retried = True
                        continue
                    exc.maybe_applied = True
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
        if any(type(value) is RawText for _, value in headers):  # bytes that are not UTF-8
            after = 2 + len(headers)
            return b"".join([*(line.encode("utf-8") for line in lines[:2]),
                             *(text_bytes(k) + b": " + text_bytes(v) + b"\r\n" for k, v in headers),
                             *(line.encode("utf-8") for line in lines[after:])])
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
