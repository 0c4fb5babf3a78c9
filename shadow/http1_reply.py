"""One HTTP/1.1 reply as `shadow.http1` reads it: parsed strictly as its bytes arrive.

A status line, then headers (names must be tokens, no obsolete line folding, CR, LF or
NUL nowhere but at line ends, at most `MAX_HEAD` bytes in all), then a body framed by
Content-Length, chunked transfer coding (extensions and trailers skipped), or the end of
the connection; Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3). Other
transfer codings (`gzip, chunked`) are not decoded: chunked is, the rest is named in
`Response.codings` for the caller to pass on or refuse. Replies to HEAD and 1xx/204/304
replies have no body; interim 1xx replies are skipped. The reason phrase and header
values keep their bytes (`text_of`).
The connection feeds bytes in; the reader takes the head, then the body whole (`read`)
or as it comes (`chunks`, pausing the socket while too much is buffered).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shadow.http1 import _Connection

MAX_HEAD = 65536
"""Bytes a reply's status line and headers may take."""

PAUSE_AT = 1 << 18
"""Buffered body bytes of a streamed reply at which the socket is paused."""

_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HEADER_BLOCK = re.compile(rb"(?:" + _TOKEN + rb":[^\r\n\x00]*\r\n)*")
_HEADER = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\r\n\x00]*?)[ \t]*\r\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Where a reply is in its parse.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class RawText(str):
    """Header bytes that are not UTF-8 (obs-text), as Latin-1 text (one character per
    byte, so it can be compared, redacted and stored) that remembers its bytes in `raw`:
    the writers send `raw`, so `caf\\xe9` leaves as it came, not as UTF-8 `caf\\xc3\\xa9`."""

    raw: bytes


def text_of(raw: bytes) -> str:
    """Header bytes as text that writes back as the same bytes: UTF-8 when they are
    (both writers encode UTF-8; Latin-1 would double-encode `café`), else a RawText."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = RawText(raw.decode("latin-1"))
        text.raw = raw
        return text


def text_bytes(text: str) -> bytes:
    """The bytes a header text (see `text_of`) is written as."""
    return text.raw if type(text) is RawText else text.encode("utf-8")


class HttpError(Exception):
    """A backend gave no usable reply; `error` is the class ('connect', 'timeout', ...)."""

    def __init__(self, error: str, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.error = error
        self.unanswered = unanswered  # the connection closed before any byte of a reply
        self.maybe_applied = False  # ... on a reused connection, and it was not resent


class Response:
    """One reply on one connection: its head once `Pool.request` returns, its body read
    with `read()` or `chunks()`. Always end it with `release()` or `close()`."""

    __slots__ = ("status", "reason", "version", "raw_headers", "content_length", "keep_alive",
                 "codings",
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
        self.codings = b""  # transfer codings other than the final chunked, not decoded

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
        if self._buffered > PAUSE_AT and not self._whole:
            self._conn.pause()

    def _data_in(self, buf: bytearray) -> None:
        """New bytes are in `buf`: parse them, report the end, wake the reader."""
        self._feed(buf)
        if self._state == _DONE:
            self._ended_on_wire()
        if self._state != _HEAD:
            self._wake()

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
        codings: list[bytes] = []
        connection = b""
        for name, value in headers:
            low = name.lower()
            if low == b"content-length":
                lengths.add(value)
            elif low == b"transfer-encoding":
                coded = True
                codings += (c for c in (t.strip(b" \t").lower() for t in value.split(b",")) if c)
            elif low == b"connection":
                connection = connection + b"," + value.lower()
        if 100 <= status < 200 and status != 101:
            return  # an interim reply: the real one follows
        self.status = status
        self.version = int(match.group(1))
        reason = match.group(3)
        self.reason = "OK" if reason == b"OK" else text_of(reason or b"")
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
        if coded:
            chunked = bool(codings) and codings[-1] == b"chunked"
            self.codings = b", ".join(codings[:-1] if chunked else codings)
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
