"""The route table and handlers both builds share; only the `Store` behind them differs.

    POST   /api/register                      201 user + session cookie; 409 taken
    POST   /api/login                         200 user + session cookie; 401
    POST   /api/logout                        200 {"logged_out": 1}, cookie cleared
    GET    /api/me                            200 user
    POST   /api/moods                         201 {"id", "points", "streak_days"}
    GET    /api/moods?limit=                  200 {"moods": [mood]}, newest first
    GET    /api/moods/{id}                    200 mood
    POST   /api/journal                       201 entry
    GET    /api/journal?q=&limit=             200 {"entries": [entry], "count"}
    GET    /api/journal/{id}                  200 entry
    PUT    /api/journal/{id}                  200 entry
    DELETE /api/journal/{id}                  204
    POST   /api/messages                      201 message
    GET    /api/inbox                         200 {"conversations": [thread]}
    GET    /api/conversations/{username}      200 {"partner", "messages": [message]}
    POST   /api/conversations/{username}/read 200 {"marked": n}
    GET    /api/points                        200 points
    GET    /api/admin/stats                   200 stats; 403 unless admin

Everything but register and login needs a session (401 without). Bad input is a 400,
an unknown id or user a 404, always as `{"error": "..."}` (see `shadow.demo.validate`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from aiohttp import web

from . import validate as v
from .auth import COOKIE_NAME, SessionCodec, hash_password, verify_password
from .replies import BACKEND, error_middleware, json_reply, tag_backend
from .store import Record, Store, UsernameTaken

STORE = web.AppKey("store", Store)
SESSIONS = web.AppKey("sessions", SessionCodec)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _store(request: web.Request) -> Store:
    return request.app[STORE]


async def current_user(request: web.Request) -> Record:
    """The user of the request's session cookie; 401 if there is no valid one."""
    user_id = request.app[SESSIONS].read(request.cookies.get(COOKIE_NAME))
    user = await _store(request).user(user_id) if user_id is not None else None
    if user is None:
        raise v.ApiError(401, "login required")
    return user


def _logged_in(user: Record, status: int, request: web.Request) -> web.Response:
    reply = json_reply(user, status)
    request.app[SESSIONS].set_cookie(reply, user["id"])
    return reply


async def register(request: web.Request) -> web.StreamResponse:
    data = await v.json_object(request)
    name, secret = v.username(data), v.password(data)
    password_hash = await asyncio.to_thread(hash_password, secret)
    try:
        user = await _store(request).add_user(name, password_hash)
    except UsernameTaken:
        raise v.ApiError(409, "username already taken") from None
    return _logged_in(user, 201, request)


async def login(request: web.Request) -> web.StreamResponse:
    data = await v.json_object(request)
    name = v.text(data, "username", max_len=32)
    secret = v.text(data, "password", max_len=128)
    found = await _store(request).credentials(name or "")
    if found is None or not await asyncio.to_thread(verify_password, secret or "", found[1]):
        raise v.ApiError(401, "wrong username or password")
    return _logged_in(found[0], 200, request)


async def logout(request: web.Request) -> web.StreamResponse:
    reply = json_reply({"logged_out": 1})
    request.app[SESSIONS].clear_cookie(reply)
    return reply


async def me(request: web.Request) -> web.StreamResponse:
    return json_reply(await current_user(request))


async def add_mood(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    score = v.integer(data, "score", low=1, high=10)
    note = v.text(data, "note", max_len=500, required=False, allow_empty=True)
    tags = v.tags(data)
    sleep_hours = v.number(data, "sleep_hours", low=0, high=24)
    today = datetime.fromtimestamp(request.app[SESSIONS].clock(), UTC).date()
    result = await _store(request).add_mood(user["id"], score, note, tags, sleep_hours, today)
    return json_reply(result, 201)


async def list_moods(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    limit = v.query_limit(request, default=20, maximum=100)
    return json_reply({"moods": await _store(request).moods(user["id"], limit)})


async def get_mood(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    mood = await _store(request).mood(user["id"], v.path_id(request))
    if mood is None:
        raise v.ApiError(404, "mood not found")
    return json_reply(mood)


async def add_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    title = v.text(data, "title", max_len=120)
    body = v.text(data, "body", max_len=10_000, required=False, allow_empty=True)
    private = v.flag(data, "private")
    entry = await _store(request).add_entry(user["id"], title or "", body or "", bool(private))
    return json_reply(entry, 201)


async def list_entries(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    search = v.query_search(request)
    limit = v.query_limit(request, default=50, maximum=200)
    entries = await _store(request).entries(user["id"], search, limit)
    return json_reply({"entries": entries, "count": len(entries)})


async def get_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    entry = await _store(request).entry(user["id"], v.path_id(request))
    if entry is None:
        raise v.ApiError(404, "entry not found")
    return json_reply(entry)


async def update_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    entry_id = v.path_id(request)
    data = await v.json_object(request)
    changes: dict[str, object] = {}
    if "title" in data:
        changes["title"] = v.text(data, "title", max_len=120)
    if "body" in data:
        changes["body"] = v.text(data, "body", max_len=10_000, allow_empty=True)
    if "private" in data:
        if data["private"] is None:
            raise v.bad("private must be true or false")
        changes["is_private"] = v.flag(data, "private")
    if not changes:
        raise v.bad("give at least one of title, body, private")
    entry = await _store(request).update_entry(user["id"], entry_id, changes)
    if entry is None:
        raise v.ApiError(404, "entry not found")
    return json_reply(entry)


async def delete_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    if not await _store(request).delete_entry(user["id"], v.path_id(request)):
        raise v.ApiError(404, "entry not found")
    return web.Response(status=204)


async def send_message(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    to = v.text(data, "to", max_len=32)
    body = v.text(data, "body", max_len=2_000)
    if to == user["username"]:
        raise v.bad("cannot send a message to yourself")
    recipient_id = await _store(request).user_id(to or "")
    if recipient_id is None:
        raise v.ApiError(404, "no such user")
    message = await _store(request).send_message(user["id"], recipient_id, body or "")
    return json_reply(message, 201)


async def inbox(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    return json_reply({"conversations": await _store(request).inbox(user["id"])})


async def _partner(request: web.Request) -> tuple[Record, str, int]:
    user = await current_user(request)
    name = request.match_info["username"]
    partner_id = await _store(request).user_id(name)
    if partner_id is None:
        raise v.ApiError(404, "no such user")
    return user, name, partner_id


async def conversation(request: web.Request) -> web.StreamResponse:
    user, name, partner_id = await _partner(request)
    messages = await _store(request).conversation(user["id"], partner_id, 50)
    return json_reply({"partner": name, "messages": messages})


async def mark_read(request: web.Request) -> web.StreamResponse:
    user, _, partner_id = await _partner(request)
    return json_reply({"marked": await _store(request).mark_read(user["id"], partner_id)})


async def points(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    return json_reply(await _store(request).points(user["id"]))


async def admin_stats(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    if not user["is_admin"]:
        raise v.ApiError(403, "admin only")
    return json_reply(await _store(request).stats())


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/api/register", register),
    ("POST", "/api/login", login),
    ("POST", "/api/logout", logout),
    ("GET", "/api/me", me),
    ("POST", "/api/moods", add_mood),
    ("GET", "/api/moods", list_moods),
    ("GET", "/api/moods/{id}", get_mood),
    ("POST", "/api/journal", add_entry),
    ("GET", "/api/journal", list_entries),
    ("GET", "/api/journal/{id}", get_entry),
    ("PUT", "/api/journal/{id}", update_entry),
    ("DELETE", "/api/journal/{id}", delete_entry),
    ("POST", "/api/messages", send_message),
    ("GET", "/api/inbox", inbox),
    ("GET", "/api/conversations/{username}", conversation),
    ("POST", "/api/conversations/{username}/read", mark_read),
    ("GET", "/api/points", points),
    ("GET", "/api/admin/stats", admin_stats),
)
ROUTE_KEYS: frozenset[str] = frozenset(f"{method} {path}" for method, path, _ in ROUTES)
"""Every route as "METHOD /template", the form `shadow.demo.bugs` uses."""


def build_app(*, backend: str, open_store: Callable[[], AbstractAsyncContextManager[Store]],
              sessions: SessionCodec) -> web.Application:
    """The app of one build: shared routes, that build's store (opened at start-up and
    closed at shutdown through `cleanup_ctx`), `X-Backend: <backend>` on every reply."""
    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024)
    app[BACKEND] = backend
    app[SESSIONS] = sessions

    async def store_context(app: web.Application):
        async with open_store() as store:
            app[STORE] = store
            yield

    app.cleanup_ctx.append(store_context)
    app.on_response_prepare.append(tag_backend)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app
