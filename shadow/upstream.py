"""The backends as the proxy sees them: one pool of keep-alive connections each.

Responsibilities: hop-by-hop header rules (RFC 9110 section 7.6.1), byte-exact
pass-through (no decompression, no redirects followed, no headers added that the client
did not send), and the error classes the rest of the program knows: 'connect',
'timeout', 'protocol', 'too_large'. The HTTP/1.1 client itself is `shadow.http1`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable

from shadow.http1 import HttpError, Pool, Response
from shadow.http1_reply import text_of
from shadow.verdict import Headers, Reply

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
})

UpstreamError = HttpError
"""A backend gave no usable reply; `error` is the class ('connect', 'timeout', ...)."""


header_text = text_of
"""Header bytes as text that is written back as the same bytes (see `http1_reply.text_of`)."""


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers minus hop-by-hop ones, including those named in `Connection`."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for key, value in pairs if key.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in pairs if (low := k.lower()) not in HOP_BY_HOP and low not in named]


def reply_headers(response: Response) -> Headers:
    """A backend reply's end-to-end headers as text."""
    return tuple(end_to_end((header_text(k), header_text(v)) for k, v in response.raw_headers))


class UpstreamResponse:
    """A backend's reply whose body has not been read yet (the primary's, streamed)."""

    __slots__ = ("_response", "started", "status", "reason", "headers", "content_length",
                 "codings")

    def __init__(self, response: Response, started: float) -> None:
        self._response = response
        self.started = started
        self.status = response.status
        self.reason = response.reason
        self.headers = reply_headers(response)
        self.content_length = response.content_length
        self.codings = response.codings.decode("latin-1")

    async def read(self, max_bytes: int | None = None) -> bytes:
        return await self._response.read(max_bytes)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.chunks()

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        """Drop the connection (the body was not read to its end)."""
        self._response.close()


class Upstream:
    """One backend: its base URL and its connection pool. Open with `start()`."""

    def __init__(self, *, name: str, url: str, pool_size: int, connect_timeout: float) -> None:
        self.name = name
        self.base_url = url.rstrip("/")
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: Pool | None = None

    async def start(self) -> None:
        self._pool = Pool(self.base_url, limit=self._pool_size, connect_timeout=self._connect_timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def url(self, target: str) -> str:
        """The absolute URL of `target` (a path and query) on this backend."""
        return self.base_url + target

    @property
    def open_connections(self) -> int:
        return self._pool.open_connections if self._pool is not None else 0

    async def open(self, method: str, target: str, headers: Iterable[tuple[str, str]],
                   body: bytes | AsyncIterator[bytes], *, timeout: float,
                   on_done: Callable[[], None] | None = None,
                   resend: bool | None = None) -> UpstreamResponse:
        """Send a request and return once the reply's head has arrived; `timeout` bounds
        every wait for the backend's bytes. Raises UpstreamError on failure; the caller
        must `release()` or `close()` the returned response. `on_done`, `resend`: see
        `http1.Pool.request`."""
        assert self._pool is not None, "Upstream.start() not called"
        started = time.perf_counter()
        response = await self._pool.request(method, target, list(headers), body,
                                            read_timeout=timeout, on_done=on_done,
                                            resend=resend)
        return UpstreamResponse(response, started)

    async def fetch(self, method: str, target: str, headers: Iterable[tuple[str, str]],
                    body: bytes, *, timeout: float, max_bytes: int,
                    on_done: Callable[[], None] | None = None,
                    resend: bool | None = None) -> Reply:
        """Send a request and read the whole reply within `timeout` seconds. Never raises:
        a failure is a Reply with `error` set. `on_done`, `resend`: see
        `http1.Pool.request`."""
        assert self._pool is not None, "Upstream.start() not called"
        started = time.perf_counter()
        response: Response | None = None
        try:
            async with asyncio.timeout(timeout):
                response = await self._pool.request(method, target, list(headers), body,
                                                    on_done=on_done, resend=resend)
                if response.content_length is not None and response.content_length > max_bytes:
                    raise HttpError("too_large", "reply larger than the compare limit")
                data = await response.read(max_bytes)
            response.release()
            return Reply(response.status, reply_headers(response), data,
                         time.perf_counter() - started)
        except asyncio.CancelledError:
            if response is not None:
                response.close()
            raise
        except Exception as exc:
            if response is not None:
                response.close()
            error = exc.error if isinstance(exc, HttpError) else (
                "timeout" if isinstance(exc, TimeoutError) else "protocol")
            return Reply(0, (), b"", time.perf_counter() - started, error=error)
