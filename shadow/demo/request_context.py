"""What every request of either build gets before its handler runs: its Store (through
the build's `Database`: the legacy build opens its SQLite connections there), the audit
row of an error reply or of an audited read, and the user of its session cookie.

The app's parts are in typed app keys: the build's `Database`, the session codec, the AI
coach's URL, the audited reads, an HTTP client session; the request's Store in `STORE`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import aiohttp
from aiohttp import web

from . import validate as v
from .auth import COOKIE_NAME, SessionCodec
from .store import Record, Store


class Database(ABC):
    """A build's databases for the app's lifetime; hands each request a Store."""

    @abstractmethod
    def session(self) -> AbstractAsyncContextManager[Store]:
        """The Store one request uses, released when the request ends."""


DATABASE = web.AppKey("database", Database)
SESSIONS = web.AppKey("sessions", SessionCodec)
COACH = web.AppKey("coach", str)
AUDITED = web.AppKey("audited", dict)
HTTP = web.AppKey("http", aiohttp.ClientSession)
STORE = web.RequestKey("store", Store)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AUDITED_READS: Mapping[str, str] = {
    "GET /api/journal/{id}": "read_entry",
    "GET /api/admin/stats": "view_stats",
    "GET /api/admin/audit": "view_audit",
}
"""Route key -> audit action written when a read of that route succeeds."""


def store_of(request: web.Request) -> Store:
    """The Store of the request (see `store_middleware`)."""
    return request[STORE]


def route_key(request: web.Request) -> str:
    """"METHOD /template" of the request; "METHOD unmatched" when no route matched (a raw
    path is never stored)."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource else 'unmatched'}"


@web.middleware
async def store_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its Store for as long as it runs."""
    async with request.app[DATABASE].session() as store:
        request[STORE] = store
        return await handler(request)


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write the audit row of an error reply, or of a successful audited read."""
    response = await handler(request)
    key = route_key(request)
    action = "error" if response.status >= 400 else request.app[AUDITED].get(key)
    if action is not None:
        user_id = request.app[SESSIONS].read(request.cookies.get(COOKIE_NAME))
        await store_of(request).audit(user_id, action, key.split(" ", 1)[1], response.status)
    return response


async def current_user(request: web.Request) -> Record:
    """The user of the request's session cookie; 401 if there is no valid one."""
    user_id = request.app[SESSIONS].read(request.cookies.get(COOKIE_NAME))
    user = await store_of(request).user(user_id) if user_id is not None else None
    if user is None:
        raise v.ApiError(401, "login required")
    return user
