"""The only place the aiohttp client is used: one pooled keep-alive session per backend.

Responsibilities: hop-by-hop header rules (RFC 9110 section 7.6.1), forwarding headers,
byte-exact pass-through (no automatic decompression, no redirects followed, no headers
added that the client did not send), and the mapping of client library failures to the
four error classes the rest of the program knows: 'connect', 'timeout', 'protocol',
'too_large'. Nothing is retried: a request reaches a backend exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import aiohttp
from yarl import URL

from shadow.verdict import Headers, Reply

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
})
# Recomputed for the hop they travel on, never copied.
_FRAMING = frozenset({"content-length", "host"})
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamError(Exception):
    """A backend gave no usable reply; `error` is the class ('connect', 'timeout', ...)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


def header_text(raw: bytes) -> str:
    """A header name or value as text that aiohttp writes back as the same bytes: the
    writer encodes UTF-8, so valid UTF-8 is decoded as such (Latin-1 would double-encode
    `café` into `cafÃ©`). Other bytes fall back to Latin-1: never an error, but their
    bytes above 0x7f then reach the other side UTF-8 encoded."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers minus hop-by-hop ones, including those named in `Connection`."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for key, value in pairs if key.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in pairs if (low := k.lower()) not in HOP_BY_HOP and low not in named]


def classify(exc: BaseException) -> str:
    """Map a client library failure to an error class."""
    if isinstance(exc, UpstreamError):
        return exc.error
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    return "protocol"


class UpstreamResponse:
    """A backend's reply whose body has not been read yet (the primary's, streamed)."""

    def __init__(self, response: aiohttp.ClientResponse, started: float) -> None:
        self._response = response
        self.started = started
        self.status = response.status
        self.reason = response.reason
        self.headers: Headers = tuple(
            end_to_end((header_text(k), header_text(v)) for k, v in response.raw_headers)
        )
        self.content_length = response.content_length

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except Exception as exc:
            raise UpstreamError(classify(exc), str(exc)) from exc

    async def chunks(self, size: int = 65536) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except Exception as exc:
            raise UpstreamError(classify(exc), str(exc)) from exc

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        """Drop the connection (the body was not read to its end)."""
        self._response.close()


class Upstream:
    """One backend: its base URL and its pooled session. Open with `start()`."""

    def __init__(self, *, name: str, url: str, pool_size: int, connect_timeout: float) -> None:
        self.name = name
        self.base = URL(url)
        self._prefix = str(self.base.origin()) + self.base.raw_path.rstrip("/")
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, seconds: float, total: bool) -> aiohttp.ClientTimeout:
        """`seconds` for the whole exchange (`total`) or between reads (a streamed reply)."""
        found = self._timeouts.get((seconds, total))
        if found is None:
            found = self._timeouts[(seconds, total)] = aiohttp.ClientTimeout(
                total=seconds if total else None, sock_connect=self._connect_timeout,
                sock_read=None if total else seconds)
        return found

    def url(self, target: str) -> URL:
        return URL(self._prefix + target, encoded=True)

    async def open(self, method: str, target: str, headers: Iterable[tuple[str, str]],
                   body: bytes | AsyncIterator[bytes], *, timeout: float,
                   total: bool = False) -> UpstreamResponse:
        """Send a request and return once the reply's head has arrived.

        Raises UpstreamError on failure; the caller must `release()` or `close()` the
        returned response.
        """
        assert self._session is not None, "Upstream.start() not called"
        started = time.perf_counter()
        try:
            response = await self._session.request(
                method, self.url(target), headers=list(headers), data=body,
                allow_redirects=False, compress=None, auto_decompress=False,
                timeout=self._timeout(timeout, total),
            )
        except Exception as exc:
            raise UpstreamError(classify(exc), f"{type(exc).__name__}: {exc}") from exc
        return UpstreamResponse(response, started)

    async def fetch(self, method: str, target: str, headers: Iterable[tuple[str, str]],
                    body: bytes, *, timeout: float, max_bytes: int) -> Reply:
        """Send a request and read the whole reply within `timeout` seconds. Never raises:
        a failure is a Reply with `error` set."""
        started = time.perf_counter()
        try:
            response = await self.open(method, target, headers, body, timeout=timeout,
                                       total=True)
            try:
                if response.content_length is not None and response.content_length > max_bytes:
                    raise UpstreamError("too_large", "reply larger than the compare limit")
                if response.content_length is not None:
                    data = await response.read()
                else:
                    data = bytearray()
                    async for chunk in response.chunks():
                        data += chunk
                        if len(data) > max_bytes:
                            raise UpstreamError("too_large", "reply larger than the compare limit")
            except BaseException:
                response.close()
                raise
            response.release()
            return Reply(response.status, response.headers, bytes(data),
                         time.perf_counter() - started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return Reply(0, (), b"", time.perf_counter() - started, error=classify(exc))
