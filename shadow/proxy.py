"""The hot path: exchange in, the primary's reply out, shadow work scheduled.

    request -> read body (up to the limit; larger bodies are streamed, not mirrored)
            -> route match -> roles snapshot (the mode at the request's start) -> a Flow
            -> a write waits at most `proxy.write_hold` for the write before it
            -> sent to the primary exactly once (its window opens; its shadow job is
               handed to causality, never awaited here) -> its reply returned byte for byte
            -> the window closes at the reply's last byte; the Pair gets the reply

Only the primary is awaited. A failure to reach the primary is a 502 (or 504 on timeout)
with a short JSON body; nothing else the proxy does can fail a client request. A client
that goes away mid-request does not cut the primary's exchange short: it finishes in the
background (bounded by `primary_timeout`), so its rows and its comparison stay right.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import random
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from shadow.config import Config
from shadow.flow import Flow, for_shadow, read_body
from shadow.marker import Marker
from shadow.mirror import MirrorLane
from shadow.modes import ModeState
from shadow.overlap import Clocks
from shadow.reply_head import (ExactResponse, ExactStreamResponse, abort, mark_absent,
                                response_for)
from shadow.routes import RouteTable
from shadow.rows.live import RowState
from shadow.upstream import Upstream, UpstreamError, end_to_end, header_text
from shadow.verdict import Exchange, Reply
from shadow.verifier import Pair, Verifier
from shadow.writes import Writes
from shadow.writes.groups import Member

log = logging.getLogger("shadow.proxy")

_NO_BODY_STATUS = frozenset({204, 304})
_DROP_REQUEST = frozenset({"host", "content-length"})


def error_response(status: int, error: str, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=orjson.dumps({"error": error, "message": message}))


class Proxy:
    """The proxy's request handler. All collaborators are built by `shadow.app`."""

    def __init__(self, *, config: Config, routes: RouteTable, modes: ModeState,
                 upstreams: dict[str, Upstream], lane: MirrorLane, verifier: Verifier,
                 writes: Writes | None = None, rows: RowState | None = None,
                 raised: Callable[[str, BaseException], None] | None = None,
                 clocks: Clocks | None = None) -> None:
        self.routes = routes
        self.clocks = clocks  # the writes running on each side, for rechecks
        self.rows = rows
        self.raised = raised or (lambda operation, exc: None)
        self.writes = writes or Writes()
        self.modes = modes
        self.upstreams = upstreams
        self.lane = lane
        self.verifier = verifier
        self.max_body = config.proxy.max_body_bytes
        self.max_reply = config.mirror.max_reply_bytes
        self.primary_timeout = config.proxy.primary_timeout
        self.shadow_timeout = config.mirror.timeout
        self.mode_change_wait = config.proxy.mode_change_wait
        self.forwarded = config.proxy.forwarded_headers
        self.rewrite_ids = config.rows.rewrite_ids
        self.marker = Marker(config.mirror.marker_header, config.mirror.marker_value,
                             os.environ.get(config.mirror.marker_secret_env) or None)
        self._stripped = verifier.metrics.marker_stripped
        self.exchange_header = config.proxy.exchange_header
        self._ids = itertools.count(1)
        self._boot = os.urandom(4).hex()
        self._random = random.random
        self._background: set[asyncio.Task] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        flow = await self._receive(request)
        barrier = self.writes.barrier
        if flow.writes and barrier is not None and barrier.closed:
            await barrier.passing(self.mode_change_wait)  # a mode change is draining
            flow.roles = self.modes.current
        self._verify(flow)
        hold = self.writes.hold
        if flow.writes and hold is not None:
            await hold.enter()
        self._send(flow)
        try:
            return await self._forward(request, flow)
        finally:
            if flow.pair is not None and flow.pair.primary is None and flow.finished:
                flow.pair.set_primary(Reply(0, (), b"", 0.0, error="cancelled"))

    async def _receive(self, request: web.Request) -> Flow:
        roles = self.modes.current
        method = request.method
        target = request.raw_path
        if not target.startswith("/"):  # absolute-form (`GET http://host/a`): sent as `/a`
            target = request.rel_url.raw_path_qs
        policy = self.routes.match(method, request.rel_url.raw_path)
        received = tuple((header_text(k), header_text(v)) for k, v in request.raw_headers)
        headers = self._forward_headers(request, received)
        if self.exchange_header:  # the proxy's own header: a client cannot choose its value
            name = self.exchange_header.lower()
            headers = [(k, v) for k, v in headers if k.lower() != name]
        body, stream = await read_body(request, self.max_body)
        return Flow(next(self._ids), roles, policy, method, target, received, headers, body,
                    stream, policy.may_write(method))

    def _verify(self, flow: Flow) -> None:
        """Give the flow a Pair, or count why it is not compared."""
        route, method, roles, policy = flow.route, flow.method, flow.roles, flow.policy
        reason = ("mode" if roles.shadow is None else "policy" if not policy.mirror
                  else "request_too_large" if flow.stream is not None
                  else "sampled_out" if policy.sample < 1.0 and self._random() >= policy.sample
                  else "")
        if reason:
            self.verifier.skipped(route, method, reason)
            return
        exchange = Exchange(f"{self._boot}-{flow.number}", method, flow.target, route,
                            flow.received, flow.body, time.time())
        flow.pair = self.verifier.pair(exchange, policy, roles.primary, roles.shadow)
        if self.exchange_header:  # both builds may log it: shadow.backend_logs finds it
            flow.headers.append((self.exchange_header, exchange.id))

    def _send(self, flow: Flow) -> None:
        """The flow leaves for the primary now: open its window and hold token, and hand
        its shadow job to causality."""
        hold, causality, attribution = self.writes.hold, self.writes.causality, self.writes.attribution
        primary = flow.roles.primary
        if attribution is not None:
            attribution.join(Member(flow.number, flow.method, flow.route, primary,
                                    flow.roles.shadow if flow.pair else None, flow.writes,
                                    flow.pair))
            if flow.pair is not None:
                flow.pair.expect_rows()
            window = flow.window = attribution.open(flow.number, primary, flow.route, flow.writes)
            flow.on_finish.append(lambda: attribution.close(window, primary))
        if flow.writes and hold is not None:
            token = hold.opened()
            flow.on_finish.append(lambda: hold.closed(token))
        if flow.writes and self.writes.barrier is not None:
            self.writes.barrier.sent()
            flow.on_finish.append(self.writes.barrier.finished)
        ordered = flow.writes if attribution is None else attribution.writes(
            flow.route, flow.writes)  # a read seen writing is ordered as a write
        flow.counted = flow.writes if attribution is None else attribution.may_write(
            flow.route, flow.writes)
        if self.clocks is not None:
            if flow.pair is not None:
                watch = flow.pair.watch = self.clocks.watch(flow.number, flow.counted)
                flow.on_finish.append(watch.primary_replied)
            if flow.counted:
                self.clocks.primary.sent(flow.number)
                flow.on_finish.append(self.clocks.primary.finished)
        if flow.pair is not None:
            if causality is not None:
                ticket = flow.ticket = causality.sent(flow.number, ordered)
                flow.on_finish.append(lambda: causality.primary_done(ticket))
                if attribution is not None:
                    flow.on_finish.append(lambda: attribution.completed(ticket))
            self._mirror(flow)

    def _mirror(self, flow: Flow) -> None:
        """Hand the exchange to the shadow, through causality when writes are ordered."""
        pair, backend = flow.pair, flow.roles.shadow
        assert pair is not None and backend is not None
        upstream = self.upstreams[backend]
        causality, attribution, ticket = self.writes.causality, self.writes.attribution, flow.ticket
        ex = pair.exchange
        headers = flow.headers + [self.marker.for_exchange(ex.id)]
        counted = self.clocks is not None and flow.counted
        running: list[Callable[[], None]] = []  # ends this write's count on the shadow

        def shadow_done() -> None:
            while running:
                running.pop()()
            if pair.watch is not None:
                pair.watch.shadow_replied()
            if flow.shadow_window is not None:
                attribution.close(flow.shadow_window, backend)
            if ticket is not None:
                causality.shadow_done(ticket)

        async def job() -> None:
            ids = self.rows.ids if self.rows is not None and self.rewrite_ids else None
            target, body = for_shadow(ids, ex.route, ex.target, ex.body, backend)
            if pair.watch is not None:
                pair.watch.sending_shadow()
            if counted:
                running.append(self.clocks.shadow.start(flow.number))
            if attribution is not None:
                flow.shadow_window = attribution.open(flow.number, backend, flow.route, flow.writes)
            try:
                reply = await upstream.fetch(ex.method, target, headers, body, on_done=shadow_done,
                                             timeout=self.shadow_timeout, max_bytes=self.max_reply,
                                             resend=flow.policy.may_resend(ex.method))
            finally:
                shadow_done()
            pair.set_shadow(reply)

        def dropped(reason: str) -> None:
            shadow_done()
            if ticket is not None:
                causality.shadow_done(ticket)
            if attribution is not None and flow.shadow_window is None:
                attribution.never_sent(flow.number, backend)
            pair.drop(reason)
            if self.rows is not None and flow.writes:
                self.rows.diverge(f"a shadow write was dropped ({reason})")

        def submit() -> None:
            self.lane.submit(job, on_drop=dropped)

        if ticket is None:
            submit()
        else:
            causality.when_ready(ticket, submit, dropped)

    def _forward_headers(self, request: web.Request,
                         received: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in end_to_end(received) if k.lower() not in _DROP_REQUEST]
        headers, stripped = self.marker.strip(headers)
        if stripped:
            self._stripped.inc(stripped)
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

    async def _forward(self, request: web.Request, flow: Flow) -> web.StreamResponse:
        """Send to the primary and answer the client. The exchange with the primary runs
        in its own task: a client that goes away does not cut it short."""
        task = asyncio.get_running_loop().create_task(self._fetch(flow))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(functools.partial(_abandoned, flow))
            raise
        if isinstance(outcome, web.StreamResponse):
            return outcome
        upstream, started = outcome
        try:
            return await self._stream(request, upstream, flow.pair, flow.roles.primary,
                                      flow.route, started)
        finally:
            flow.finish()

    async def _fetch(self, flow: Flow):
        """The primary's reply as a response to send, or (a streaming reply, its start
        time) for `_stream`; finishes the flow unless the reply is still streaming."""
        primary, method, pair, route = self.upstreams[flow.roles.primary], flow.method, flow.pair, flow.route
        started = time.perf_counter()
        streaming = False
        try:
            try:
                upstream = await primary.open(method, flow.target, flow.headers,
                                              flow.body if flow.stream is None else flow.stream,
                                              timeout=self.primary_timeout, on_done=flow.finish,
                                              resend=flow.policy.may_resend(method))
            except UpstreamError as exc:
                return self._failed(pair, primary.name, route, exc, started)
            no_body = method == "HEAD" or upstream.status in _NO_BODY_STATUS \
                or 100 <= upstream.status < 200
            if upstream.codings and not no_body:  # e.g. `gzip, chunked`: no way to say so
                upstream.close()                  # in aiohttp's head, nor to HTTP/1.0
                return self._failed(pair, primary.name, route, UpstreamError(
                    "protocol", f"transfer coding {upstream.codings!r} is not passed on"),
                    started)
            length = upstream.content_length
            if not (no_body or (length is not None and length <= self.max_reply)):
                streaming = True
                return upstream, started
            try:
                data = b"" if no_body else await upstream.read()
            except UpstreamError as exc:
                upstream.close()
                return self._failed(pair, primary.name, route, exc, started)
            upstream.release()
            reply = Reply(upstream.status, upstream.headers, data, time.perf_counter() - started)
            self._primary_done(pair, primary.name, route, reply)
            response = response_for(web.Response, ExactResponse, upstream)
            mark_absent(response, upstream.headers)
            if no_body:
                if length is not None and method == "HEAD":
                    response.headers["Content-Length"] = str(length)
                return response
            response.body = data
            return response
        finally:
            if not streaming:
                flow.finish()

    async def _stream(self, request: web.Request, upstream, pair: Pair | None, backend: str,
                      route: str, started: float) -> web.StreamResponse:
        """A large or unsized reply: streamed to the client, a copy kept up to the limit."""
        response = response_for(web.StreamResponse, ExactStreamResponse, upstream)
        mark_absent(response, upstream.headers)
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
            # The head is already sent: the connection is cut with a reset, never closed
            # cleanly (an HTTP/1.0 client would take the cut body for the whole reply).
            abort(request.transport)
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

    def _failed(self, pair: Pair | None, backend: str, route: str, exc: UpstreamError,
                started: float) -> web.Response:
        error = exc.error
        reply = Reply(0, (), b"", time.perf_counter() - started, error=error)
        self._primary_done(pair, backend, route, reply)
        self.verifier.primary_failed(backend, route, 504 if error == "timeout" else 502, error)
        if error == "timeout":
            return error_response(504, "primary_timeout",
                                  f"the {backend} backend did not answer in time")
        if exc.maybe_applied:
            return error_response(
                502, "primary_dropped",
                f"the {backend} backend closed the connection without replying; the request "
                "was not sent again (it is not a read) and may have been applied")
        if error == "connect":
            return error_response(502, "primary_connect", f"the {backend} backend could not be reached")
        return error_response(502, f"primary_{error}",
                              f"the {backend} backend sent no valid reply ({exc})")


def _abandoned(flow: Flow, task: asyncio.Task) -> None:
    """The client went away while the primary answered: a streaming reply is closed."""
    if not task.cancelled() and task.exception() is None:
        outcome = task.result()
        if isinstance(outcome, tuple):
            outcome[0].close()
    flow.finish()
    if flow.pair is not None and flow.pair.primary is None:
        flow.pair.set_primary(Reply(0, (), b"", 0.0, error="cancelled"))
