"""One client request from arrival to verdict: the object the hot path carries.

A `Flow` holds what the proxy received (method, target, headers, body), where it goes (the
roles of the mode at arrival, the route policy), and what it opened on the way: the pair
that will compare it, its place in the shadow's causality, its window on the primary and
its share of the write hold. `finish()` closes what it opened on the primary, exactly
once, whichever comes first: the reply's last byte arriving or the exchange failing.
`read_body()` reads what the client sent, up to the proxy's limit; `for_shadow()` what a
shadow copy of it carries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

_STREAM_CHUNK = 65536

if TYPE_CHECKING:
    from shadow.modes import Roles
    from shadow.routes import RoutePolicy
    from shadow.rows.ids import IdTranslator
    from shadow.verifier import Pair
    from shadow.writes.causality import Ticket
    from shadow.writes.windows import Window


@dataclass(slots=True, eq=False)
class Flow:
    """One exchange on the hot path. `writes`: the route policy says it may write;
    `counted`: it is counted among the writes that may overlap others (shadow.overlap)."""

    number: int
    roles: Roles
    policy: RoutePolicy
    method: str
    target: str
    received: tuple[tuple[str, str], ...]
    headers: list[tuple[str, str]]
    body: bytes
    stream: AsyncIterator[bytes] | None
    writes: bool
    pair: Pair | None = None
    ticket: Ticket | None = None
    window: Window | None = None
    shadow_window: Window | None = None
    counted: bool = False
    on_finish: list[Callable[[], None]] = field(default_factory=list)
    finished: bool = False

    @property
    def route(self) -> str:
        return self.policy.template

    def finish(self) -> None:
        """The primary is done with this exchange: close what was opened for it."""
        if self.finished:
            return
        self.finished = True
        for action in self.on_finish:
            action()


def for_shadow(ids: IdTranslator | None, route: str, target: str, body: bytes,
               backend: str) -> tuple[str, bytes]:
    """The target and body of an exchange as its copy to the shadow `backend` carries
    them: the ids the key map learnt written as that backend's (`ids` None: ids are not
    rewritten)."""
    if ids is None or not ids.active:  # no burnt sequence value yet
        return target, body
    to_candidate = backend == "candidate"
    return ids.target(route, target, to_candidate), ids.body(body, to_candidate)


async def read_body(request: web.Request, limit: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
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
