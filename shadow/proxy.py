"""The hot path: exchange in, the primary's reply out, shadow work scheduled.

    request -> read body (up to the limit; larger bodies are streamed, not mirrored)
            -> route match -> roles snapshot (the mode at the request's start)
            -> shadow job queued on the mirror lane (never awaited here)
            -> primary forwarded exactly once -> its reply returned byte for byte
            -> the primary's reply handed to the verifier's Pair

Only the primary is awaited. A failure to reach the primary is a 502 (or 504 on timeout)
with a short JSON body; nothing else the proxy does can fail a client request.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable

import orjson
from aiohttp import web

from shadow.config import Config
from shadow.mirror import MirrorLane
from shadow.modes import ModeState
from shadow.routes import RouteTable
from shadow.rows.live import RowState
from shadow.upstream import Upstream, UpstreamError, end_to_end, header_text
from shadow.verdict import Exchange, Reply
from shadow.verifier import Pair, Verifier
from shadow.writes import WriteOrder

log = logging.getLogger("shadow.proxy")

_NO_BODY_STATUS = frozenset({204, 304})
_DROP_REQUEST = frozenset({"host", "content-length"})
_STREAM_CHUNK = 65536


def _nothing() -> None:
    return None


class _Once:
    """Runs `action` on the first call only: the write lock is released by whichever
    comes first, the reply's last byte arriving or the handler's end."""

    __slots__ = ("_action",)

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


def error_response(status: int, error: str, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=orjson.dumps({"error": error, "message": message}))


class Proxy:
    """The proxy's request handler. All collaborators are built by `shadow.app`."""

    def __init__(self, *, config: Config, routes: RouteTable, modes: ModeState,
                 upstreams: dict[str, Upstream], lane: MirrorLane, verifier: Verifier,
                 writes: WriteOrder | None = None, write_lane: MirrorLane | None = None,
                 rows: RowState | None = None,
                 raised: Callable[[str, BaseException], None] | None = None) -> None:
        self.routes = routes
        self.rows = rows
        self.raised = raised or (lambda operation, exc: None)
        self.writes = writes
        self.write_lane = write_lane
        self.modes = modes
        self.upstreams = upstreams
        self.lane = lane
        self.verifier = verifier
        self.max_body = config.proxy.max_body_bytes
        self.max_reply = config.mirror.max_reply_bytes
        self.primary_timeout = config.proxy.primary_timeout
        self.shadow_timeout = config.mirror.timeout
        self.forwarded = config.proxy.forwarded_headers
        self.rewrite_ids = config.rows.rewrite_ids
        self.marker = (config.mirror.marker_header, config.mirror.marker_value)
        self._ids = itertools.count(1)
        self._boot = os.urandom(4).hex()
        self._random = random.random

    async def handle(self, request: web.Request) -> web.StreamResponse:
        roles = self.modes.current
        method = request.method
        target = request.raw_path
        if not target.startswith("/"):  # absolute-form (`GET http://host/a`): sent as `/a`
            target = request.rel_url.raw_path_qs
        policy = self.routes.match(method, request.rel_url.raw_path)
        received = tuple((header_text(k), header_text(v)) for k, v in request.raw_headers)
        headers = self._forward_headers(request, received)
        body, stream = await _read_body(request, self.max_body)
        ordered = (self.writes is not None and policy.may_write(method)
                   and (roles.shadow is not None or self.rows is not None))
        release: _Once | None = None
        if ordered:
            await self.writes.lock.acquire()
            release = _Once(self.writes.lock.release)
        try:
            return await self._exchange(request, roles, policy, method, target, received,
                                        headers, body, stream, ordered, release)
        finally:
            if release is not None:
                release()

    async def _exchange(self, request, roles, policy, method, target, received, headers, body,
                        stream, ordered: bool, release: _Once | None) -> web.StreamResponse:
        route = policy.template
        pair: Pair | None = None
        answered: Callable[[], None] | None = None
        if roles.shadow is None:
            self.verifier.skipped(route, method, "mode")
        elif not policy.mirror:
            self.verifier.skipped(route, method, "policy")
        elif stream is not None:
            self.verifier.skipped(route, method, "request_too_large")
        elif policy.sample < 1.0 and self._random() >= policy.sample:
            self.verifier.skipped(route, method, "sampled_out")
        else:
            exchange = Exchange(f"{self._boot}-{next(self._ids)}", method, target, route,
                                received, body, time.time())
            pair = self.verifier.pair(exchange, policy, roles.primary, roles.shadow)
            if ordered and self.rows is not None:
                pair.expect_rows()
            answered = self._mirror(pair, roles.shadow, headers + [self.marker], ordered)

        # The next write may start on the primary as soon as this one's reply is in (a
        # loop turn before this handler resumes); with row capture, only once its rows
        # are read, below.
        primary = self.upstreams[roles.primary]
        try:
            return await self._forward(request, primary, method, target, headers,
                                       body if stream is None else stream, pair, route,
                                       release if self.rows is None else None)
        finally:
            # Before the client is answered: a read it sends next may name the row this
            # write created, and must find its key pair learnt.
            if ordered and self.rows is not None:
                await self._capture_primary(roles, pair, route)
            # Complete for the shadow's ordering when the reply is passed on: a request that
            # arrives before then is concurrent with it for every client.
            if answered is not None:
                answered()
            if pair is not None:
                if pair.primary is None:
                    pair.set_primary(Reply(0, (), b"", 0.0, error="cancelled"))

    async def _capture_primary(self, roles, pair: Pair | None, route: str) -> None:
        """Read what this write changed on the primary (still under the write lock)."""
        rows = await self._drain(roles.primary)
        if pair is not None:
            pair.set_primary_rows(rows)
        elif rows:
            self.rows.diverge(f"{route} wrote rows the shadow never received")

    async def _drain(self, backend: str) -> tuple:
        try:
            return await self.rows.drain(backend)
        except Exception as exc:  # the verifier's own failure: logged, counted
            self.raised(f"drain_{backend}", exc)
            return ()

    def _forward_headers(self, request: web.Request,
                         received: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in end_to_end(received) if k.lower() not in _DROP_REQUEST]
        if self.forwarded:
            peer = request.remote or ""
            prior = request.headers.get("X-Forwarded-For")
            headers = [(k, v) for k, v in headers if k.lower() not in (
                "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")]
            headers.append(("X-Forwarded-For", f"{prior}, {peer}" if prior else peer))
            headers.append(("X-Forwarded-Proto", request.scheme))
            if request.host:
                headers.append(("X-Forwarded-Host", request.host))
        return headers

    def _mirror(self, pair: Pair, backend: str, headers: list[tuple[str, str]],
                ordered: bool) -> Callable[[], None]:
        """Hand the exchange to the shadow; returns what to call once the primary has
        answered. Writes go to the ordered lane (numbered under the write lock); reads go
        to the concurrent lane once the writes they must see are on the shadow."""
        upstream = self.upstreams[backend]
        ex = pair.exchange
        writes = self.writes

        async def send(on_done: Callable[[], None] | None = None) -> None:
            target, body = ex.target, ex.body
            ids = self.rows.ids if self.rows is not None and self.rewrite_ids else None
            if ids is not None and ids.active:  # after a burnt sequence value
                to_candidate = backend == "candidate"
                target = ids.target(ex.route, target, to_candidate)
                body = ids.body(body, to_candidate)
            reply = await upstream.fetch(ex.method, target, headers, body, on_done=on_done,
                                         timeout=self.shadow_timeout, max_bytes=self.max_reply)
            rows = await self._drain(backend) if pair.rows_expected else ()
            pair.set_shadow(reply, rows)

        if writes is None:
            self.lane.submit(send, on_drop=pair.drop)
            return _nothing
        if ordered:
            seq, reads_before = writes.write_started()

            async def write_job() -> None:
                try:
                    await writes.reads_done(reads_before, self.shadow_timeout)
                    # The reads parked behind this write may go as soon as its reply is on
                    # the wire; with row capture, only once its rows are drained.
                    await send(None if pair.rows_expected else lambda: writes.finished(seq))
                finally:
                    writes.finished(seq)

            def write_dropped(reason: str) -> None:
                writes.dropped(seq)
                pair.drop(reason)
                if self.rows is not None:
                    self.rows.diverge(f"a shadow write was dropped ({reason})")

            self.write_lane.submit(write_job, on_drop=write_dropped)
            return lambda: writes.write_done_on_primary(seq)

        ticket = writes.read_arrived()

        async def read_job() -> None:
            try:
                # The writes waiting for this read may go as soon as its reply is on the wire.
                await send(lambda: writes.read_done_on_shadow(ticket))
            finally:
                writes.read_done_on_shadow(ticket)

        def read_dropped(reason: str) -> None:
            writes.read_done_on_shadow(ticket)
            pair.drop(reason)

        writes.when_visible(ticket, lambda: self.lane.submit(read_job, on_drop=read_dropped),
                            read_dropped)
        return lambda: writes.read_done_on_primary(ticket)

    async def _forward(self, request: web.Request, primary: Upstream, method: str, target: str,
                       headers: list[tuple[str, str]], body: bytes | AsyncIterator[bytes],
                       pair: Pair | None, route: str,
                       on_done: Callable[[], None] | None) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            upstream = await primary.open(method, target, headers, body,
                                          timeout=self.primary_timeout, on_done=on_done)
        except UpstreamError as exc:
            return self._failed(pair, primary.name, route, exc.error, started)

        no_body = method == "HEAD" or upstream.status in _NO_BODY_STATUS \
            or 100 <= upstream.status < 200
        length = upstream.content_length
        if no_body or (length is not None and length <= self.max_reply):
            try:
                data = b"" if no_body else await upstream.read()
            except UpstreamError as exc:
                upstream.close()
                return self._failed(pair, primary.name, route, exc.error, started)
            upstream.release()
            reply = Reply(upstream.status, upstream.headers, data, time.perf_counter() - started)
            self._primary_done(pair, primary.name, route, reply)
            response = web.Response(status=upstream.status, reason=upstream.reason,
                                    headers=_response_headers(upstream.headers))
            _mark_absent(response, upstream.headers)
            if no_body:
                if length is not None and method == "HEAD":
                    response.headers["Content-Length"] = str(length)
                return response
            response.body = data
            return response
        return await self._stream(request, upstream, pair, primary.name, route, started)

    async def _stream(self, request: web.Request, upstream, pair: Pair | None, backend: str,
                      route: str, started: float) -> web.StreamResponse:
        """A large or unsized reply: streamed to the client, a copy kept up to the limit."""
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                      headers=_response_headers(upstream.headers))
        _mark_absent(response, upstream.headers)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        kept = bytearray()
        too_large = False
        try:
            await response.prepare(request)
            async for chunk in upstream.chunks():
                if not too_large:
                    kept += chunk
                    if len(kept) > self.max_reply:
                        too_large = True
                        kept = bytearray()
                await response.write(chunk)
            await response.write_eof()
        except UpstreamError as exc:
            upstream.close()
            # The head is already sent: all that can be done is to cut the connection.
            request.transport and request.transport.close()
            self._primary_done(pair, backend, route,
                               Reply(0, (), b"", time.perf_counter() - started, exc.error))
            return response
        except BaseException:
            upstream.close()
            raise
        upstream.release()
        reply = Reply(upstream.status, upstream.headers, bytes(kept), time.perf_counter() - started)
        if too_large:
            reply = Reply(upstream.status, upstream.headers, b"", reply.elapsed, "too_large")
        self._primary_done(pair, backend, route, reply)
        return response

    def _primary_done(self, pair: Pair | None, backend: str, route: str, reply: Reply) -> None:
        self.verifier.observe_primary(backend, route, reply)
        if pair is not None:
            pair.set_primary(reply)

    def _failed(self, pair: Pair | None, backend: str, route: str, error: str,
                started: float) -> web.Response:
        reply = Reply(0, (), b"", time.perf_counter() - started, error=error)
        self._primary_done(pair, backend, route, reply)
        self.verifier.primary_failed(backend, route, 504 if error == "timeout" else 502, error)
        if error == "timeout":
            return error_response(504, "primary_timeout",
                                  f"the {backend} backend did not answer in time")
        return error_response(502, f"primary_{error}", f"the {backend} backend could not be reached"
                              if error == "connect" else f"the {backend} backend sent no valid reply")


# Headers aiohttp adds to a reply that has none; the primary's reply must not gain them.
_DEFAULTED = ("Content-Type", "Date", "Server")
_ABSENT = (web.ResponseKey("absent_headers", list) if hasattr(web, "ResponseKey")
           else "shadow.absent_headers")


def _mark_absent(response: web.StreamResponse, headers) -> None:
    present = {k.lower() for k, _ in headers}
    absent = [name for name in _DEFAULTED if name.lower() not in present]
    if absent:
        response[_ABSENT] = absent


async def strip_defaults(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: runs after aiohttp has filled in its defaults and
    before the head is written; removes the ones the primary did not send."""
    for name in response.get(_ABSENT, ()):
        response.headers.popall(name, None)


def _response_headers(headers) -> list[tuple[str, str]]:
    """The primary's end-to-end headers minus Content-Length, which aiohttp recomputes
    from the body (and which is set back for HEAD replies)."""
    return [(k, v) for k, v in headers if k.lower() != "content-length"]


async def _read_body(request: web.Request, limit: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """The request body if it fits in `limit` bytes, else (b"", a stream of the whole body)."""
    if not request.body_exists:
        return b"", None
    length = request.content_length
    if length is not None and length > limit:
        return b"", _chain(b"", request)
    data = bytearray()
    while True:
        chunk = await request.content.read(_STREAM_CHUNK)
        if not chunk:
            return bytes(data), None
        data += chunk
        if len(data) > limit:
            return b"", _chain(bytes(data), request)


async def _chain(prefix: bytes, request: web.Request) -> AsyncIterator[bytes]:
    if prefix:
        yield prefix
    async for chunk in request.content.iter_chunked(_STREAM_CHUNK):
        yield chunk
