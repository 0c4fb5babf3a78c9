"""The two listeners (proxy and admin): client connections bounded in time and in number.

aiohttp serves the requests; each accepted connection is first seen by a `_Guarded`
protocol that hands everything on to aiohttp's and adds what a server in front of the
internet needs and aiohttp lacks:

  - a **header timeout**: a connection that has not delivered a complete request head
    `header_timeout` seconds after it opened is answered 408 and closed (2 000 sockets
    each holding half a head would otherwise hold 2 000 descriptors for ever);
  - a **connection limit** per listener: past `max_connections` open connections a new one
    is answered 503 and closed at once, so the proxy port can never take the descriptors
    the admin listener (an operator must always be able to roll back), the backend pools
    and the state store need.

Between requests on a kept-alive connection aiohttp's own `keepalive_timeout` applies (the
idle timeout): a connection silent that long after its last reply, or holding only part
of its next request head, is closed.

`fd_budget` raises the process's descriptor limit to its hard limit and says how many
client connections it leaves room for once the reserve is set aside.
"""

from __future__ import annotations

import asyncio
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

FD_RESERVE = 64
"""Descriptors kept aside for the state store, databases, logs and the process itself."""



def _reply(status: str, text: str) -> bytes:
    """A whole reply that ends its connection, written before any request was read."""
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


_TIMED_OUT = _reply("408 Request Timeout", "no complete request head in time\n")
_BUSY = _reply("503 Service Unavailable", "too many open connections; retry later\n")


@dataclass
class Guard:
    """One listener's bounds and counts. `on_closed(reason)` is called for every
    connection the guard ends itself: 'header_timeout' or 'limit'."""

    name: str
    header_timeout: float
    max_connections: int
    on_closed: Callable[[str], None] = lambda reason: None
    open: int = 0
    closed: dict[str, int] = field(default_factory=lambda: {"header_timeout": 0, "limit": 0})

    def _closed(self, reason: str) -> None:
        self.closed[reason] += 1
        self.on_closed(reason)


class _Guarded(asyncio.Protocol):
    """One client connection: bounds it, then hands every event to aiohttp's protocol."""

    __slots__ = ("_guard", "_factory", "_inner", "_transport", "_timer", "_tail")

    def __init__(self, guard: Guard, factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        self._transport = transport  # type: ignore[assignment]
        if guard.open >= guard.max_connections:
            guard._closed("limit")
            transport.write(_BUSY)  # type: ignore[attr-defined]
            transport.close()
            return
        guard.open += 1
        self._timer = asyncio.get_running_loop().call_later(guard.header_timeout, self._too_slow)
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\n\r\n" in seen or b"\n\n" in seen:  # the end of the first request head
                self._timer.cancel()
                self._timer = None
            else:
                self._tail = seen[-2:]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inner is not None:
            self._guard.open -= 1
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _too_slow(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._guard._closed("header_timeout")
            transport.write(_TIMED_OUT)
            transport.close()


def bind(address: str, *, backlog: int = 1024) -> socket.socket:
    """A listening socket on `address` (HOST:PORT, IPv6 hosts in brackets). Bound before
    anything else starts, so a port in use fails start-up at once. Raises OSError."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, int(port)), family=family, backlog=backlog)


class GuardedSite(web.BaseSite):
    """A site on an already bound socket whose connections go through a Guard first."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, guard: Guard) -> None:
        super().__init__(runner)
        self._sock = sock
        self.guard = guard

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        guard = self.guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Guarded(guard, server), sock=self._sock)


def fd_budget(reserved: int) -> tuple[int, int]:
    """Raise the soft descriptor limit to the hard one; returns (limit, descriptors left
    for client connections of the proxy listener once `reserved` are set aside)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, soft - reserved - FD_RESERVE
