"""The primary's reply head, written to the client as the primary sent it, and the way a
reply cut short is ended so that every client can tell.

aiohttp writes a head as UTF-8 text, and takes out a 304's `Content-Length`. Neither is
what the primary said when a reason phrase or header value holds bytes that are not UTF-8
(`caf\\xe9`, obs-text: kept as `http1_reply.RawText`), or when a 304 names the length
its 200 would have (RFC 9110 section 8.6 allows it; caches use it). For those replies the
proxy uses `ExactResponse` / `ExactStreamResponse`, whose head is the status line and
headers aiohttp prepared, each written as its own bytes. Every other reply keeps aiohttp's
faster writer.

`response_for` builds the client's reply for the primary's head (byte-exact only when
needed) and `mark_absent` / `strip_defaults` keep aiohttp from adding the `Content-Type`,
`Date` or `Server` the primary did not send.

`abort(transport)` ends a connection with a TCP reset: a reply whose body was cut after
its head had gone out must never end in a clean close, which an HTTP/1.0 client (nginx's
default towards upstreams) reads as a complete reply.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterable

from aiohttp import hdrs, web

from shadow.http1_reply import RawText, text_bytes

_LINGER_RESET = struct.pack("ii", 1, 0)


def needs_exact(status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bool:
    """True when aiohttp's own head writer would change what the primary said."""
    if type(reason) is RawText:
        return True
    for name, value in headers:
        if type(value) is RawText or (status == 304 and name.lower() == "content-length"):
            return True
    return False


class _ExactHead:
    """Writes the head from the prepared headers, each value as its own bytes."""

    _length_304: str | None = None

    def keep_length(self, headers: Iterable[tuple[str, str]]) -> None:
        """Remember a 304's Content-Length (aiohttp drops it while preparing)."""
        for name, value in headers:
            if name.lower() == "content-length":
                self._length_304 = value

    async def _write_headers(self) -> None:  # overrides aiohttp's StreamResponse method
        request = self._req
        writer = self._payload_writer
        assert request is not None and writer is not None
        headers = self._headers
        if self._length_304 is not None and self._status == 304:
            headers[hdrs.CONTENT_LENGTH] = self._length_304
        on_sent = getattr(writer, "_on_headers_sent", None)
        if on_sent is not None:
            await on_sent(headers)
        major, minor = request.version
        head = b"".join([
            b"HTTP/%d.%d %d %s\r\n" % (major, minor, self._status, text_bytes(self._reason)),
            *(text_bytes(k) + b": " + text_bytes(v) + b"\r\n" for k, v in headers.items()),
            b"\r\n"])
        if hasattr(writer, "_headers_buf"):  # aiohttp buffers the head to send it with the body
            writer._headers_buf = head
            writer._headers_written = False
            if getattr(self, "_send_headers_immediately", True):
                writer.send_headers()
        else:
            writer._write(head)


class ExactResponse(_ExactHead, web.Response):
    """A whole reply whose head is written byte-exact."""


class ExactStreamResponse(_ExactHead, web.StreamResponse):
    """A streamed reply whose head is written byte-exact."""


def abort(transport) -> None:
    """Close a client connection with a TCP reset (SO_LINGER 0), so a cut reply is an
    error for the client whatever its framing; unsent buffered bytes are dropped."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


# Headers aiohttp adds to a reply that has none; the primary's reply must not gain them.
_DEFAULTED = ("Content-Type", "Date", "Server")
_ABSENT = (web.ResponseKey("absent_headers", list) if hasattr(web, "ResponseKey")
           else "shadow.absent_headers")




def mark_absent(response: web.StreamResponse, headers) -> None:
    present = {k.lower() for k, _ in headers}
    absent = [name for name in _DEFAULTED if name.lower() not in present]
    if absent:
        response[_ABSENT] = absent


async def strip_defaults(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: runs after aiohttp has filled in its defaults and
    before the head is written; removes the ones the primary did not send."""
    for name in response.get(_ABSENT, ()):
        response.headers.popall(name, None)


def response_for(plain: type[web.StreamResponse], exact: type[web.StreamResponse],
              upstream) -> web.StreamResponse:
    """The client's reply for the primary's head; byte-exact when aiohttp's writer would
    change it (see `shadow.reply_head`)."""
    headers = response_headers(upstream.headers)
    if not needs_exact(upstream.status, upstream.reason, upstream.headers):
        return plain(status=upstream.status, reason=upstream.reason, headers=headers)
    response = exact(status=upstream.status, reason=upstream.reason, headers=headers)
    response.keep_length(upstream.headers)
    return response


def response_headers(headers) -> list[tuple[str, str]]:
    """The primary's end-to-end headers minus Content-Length, which aiohttp recomputes
    from the body (and which is set back for HEAD replies)."""
    return [(k, v) for k, v in headers if k.lower() != "content-length"]
