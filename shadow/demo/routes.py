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
    GET    /api/achievements                  200 {"achievements": [badge]}
    POST   /api/reflections                   201 reflection (waits on the AI coach); 503
    GET    /api/reflections                   200 {"reflections": [reflection]}
    GET    /api/csrf                          200 {"csrf_token"}, fresh on every call
    GET    /api/admin/stats                   200 stats; 403 unless admin
    GET    /api/admin/audit?min=              200 {"actions": [action]}; 403 unless admin

Everything but register, login and csrf needs a session (401 without); login needs the
header `X-CSRF-Token` with a token from /api/csrf (403 without). Bad input is a 400, an
unknown id or user a 404, always as `{"error": "...", "error_id": "<random>"}` (see
`shadow.demo.validate` and `shadow.demo.replies`).

Every request gets its own store from the build's `Database` (the legacy build opens its
SQLite connections there). An audit row is written for every error reply and for the
successful reads in `AUDITED_READS`, each in its own transaction after the reply is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from . import validate as v
from .auth import CSRF_HEADER, SessionCodec, hash_password, verify_password
from .coach import CoachUnavailable, ask_coach
from .replies import BACKEND, error_middleware, json_reply, tag_backend
from .request_context import (AUDITED, AUDITED_READS, COACH, DATABASE, HTTP, SESSIONS,
                              Database, Handler, audit_middleware, current_user, store_of,
                              store_middleware)
from .store import Record, UsernameTaken


def _logged_in(user: Record, status: int, request: web.Request) -> web.Response:
    reply = json_reply(user, status)
    request.app[SESSIONS].set_cookie(reply, user["id"])
    return reply


async def register(request: web.Request) -> web.StreamResponse:
    data = await v.json_object(request)
    name, secret = v.username(data), v.password(data)
    password_hash = await asyncio.to_thread(hash_password, secret)
    try:
        user = await store_of(request).add_user(name, password_hash)
    except UsernameTaken:
        raise v.ApiError(409, "username already taken") from None
    return _logged_in(user, 201, request)


async def csrf(request: web.Request) -> web.StreamResponse:
    return json_reply({"csrf_token": request.app[SESSIONS].csrf_token()})


async def login(request: web.Request) -> web.StreamResponse:
    if not request.app[SESSIONS].csrf_valid(request.headers.get(CSRF_HEADER)):
        raise v.ApiError(403, "missing or expired CSRF token")
    data = await v.json_object(request)
    name = v.text(data, "username", max_len=32)
    secret = v.text(data, "password", max_len=128)
    found = await store_of(request).credentials(name or "")
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
    result = await store_of(request).add_mood(user["id"], score, note, tags, sleep_hours, today)
    return json_reply(result, 201)


async def list_moods(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    limit = v.query_limit(request, default=20, maximum=100)
    return json_reply({"moods": await store_of(request).moods(user["id"], limit)})


async def get_mood(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    mood = await store_of(request).mood(user["id"], v.path_id(request))
    if mood is None:
        raise v.ApiError(404, "mood not found")
    return json_reply(mood)


async def add_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    title = v.text(data, "title", max_len=120)
    body = v.text(data, "body", max_len=10_000, required=False, allow_empty=True)
    private = v.flag(data, "private")
    entry = await store_of(request).add_entry(user["id"], title or "", body or "", bool(private))
    return json_reply(entry, 201)


async def list_entries(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    search = v.query_search(request)
    limit = v.query_limit(request, default=50, maximum=200)
    entries = await store_of(request).entries(user["id"], search, limit)
    return json_reply({"entries": entries, "count": len(entries)})


async def get_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    entry = await store_of(request).entry(user["id"], v.path_id(request))
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
    entry = await store_of(request).update_entry(user["id"], entry_id, changes)
    if entry is None:
        raise v.ApiError(404, "entry not found")
    return json_reply(entry)


async def delete_entry(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    if not await store_of(request).delete_entry(user["id"], v.path_id(request)):
        raise v.ApiError(404, "entry not found")
    return web.Response(status=204)


async def send_message(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    to = v.text(data, "to", max_len=32)
    body = v.text(data, "body", max_len=2_000)
    if to == user["username"]:
        raise v.bad("cannot send a message to yourself")
    recipient_id = await store_of(request).user_id(to or "")
    if recipient_id is None:
        raise v.ApiError(404, "no such user")
    message = await store_of(request).send_message(user["id"], recipient_id, body or "")
    return json_reply(message, 201)


async def inbox(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    return json_reply({"conversations": await store_of(request).inbox(user["id"])})


async def _partner(request: web.Request) -> tuple[Record, str, int]:
    user = await current_user(request)
    name = request.match_info["username"]
    partner_id = await store_of(request).user_id(name)
    if partner_id is None:
        raise v.ApiError(404, "no such user")
    return user, name, partner_id


async def conversation(request: web.Request) -> web.StreamResponse:
    user, name, partner_id = await _partner(request)
    messages = await store_of(request).conversation(user["id"], partner_id, 50)
    return json_reply({"partner": name, "messages": messages})


async def mark_read(request: web.Request) -> web.StreamResponse:
    user, _, partner_id = await _partner(request)
    return json_reply({"marked": await store_of(request).mark_read(user["id"], partner_id)})


async def points(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    return json_reply(await store_of(request).points(user["id"]))


async def achievements(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    now = datetime.fromtimestamp(request.app[SESSIONS].clock(), UTC)
    return json_reply({"achievements": await store_of(request).achievements(user["id"], now)})


async def add_reflection(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    data = await v.json_object(request)
    entry_id = v.integer(data, "entry_id", low=1, high=v.MAX_ID)
    entry = await store_of(request).entry(user["id"], entry_id)
    if entry is None:
        raise v.ApiError(404, "entry not found")
    if COACH not in request.app:
        raise v.ApiError(503, "the coach is not available")
    try:
        reply, confidence = await ask_coach(request.app[HTTP], request.app[COACH],
                                            f"{entry['title']}\n{entry['body']}")
    except CoachUnavailable:
        raise v.ApiError(503, "the coach is not available") from None
    reflection = await store_of(request).add_reflection(user["id"], entry_id, reply, confidence)
    return json_reply(reflection, 201)


async def list_reflections(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    limit = v.query_limit(request, default=20, maximum=100)
    return json_reply({"reflections": await store_of(request).reflections(user["id"], limit)})


async def _admin(request: web.Request) -> Record:
    user = await current_user(request)
    if not user["is_admin"]:
        raise v.ApiError(403, "admin only")
    return user


async def admin_stats(request: web.Request) -> web.StreamResponse:
    await _admin(request)
    return json_reply(await store_of(request).stats())


async def admin_audit(request: web.Request) -> web.StreamResponse:
    await _admin(request)
    raw = request.query.get("min", "1")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1_000_000):
        raise v.bad("min must be an integer from 1 to 1000000")
    return json_reply({"actions": await store_of(request).audit_summary(int(raw))})


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
    ("GET", "/api/achievements", achievements),
    ("POST", "/api/reflections", add_reflection),
    ("GET", "/api/reflections", list_reflections),
    ("GET", "/api/csrf", csrf),
    ("GET", "/api/admin/stats", admin_stats),
    ("GET", "/api/admin/audit", admin_audit),
)
ROUTE_KEYS: frozenset[str] = frozenset(f"{method} {path}" for method, path, _ in ROUTES)
"""Every route as "METHOD /template", the form `shadow.demo.bugs` uses."""


def build_app(*, backend: str,
              open_database: Callable[[], AbstractAsyncContextManager[Database]],
              sessions: SessionCodec, coach_url: str | None = None,
              audited: Mapping[str, str] = AUDITED_READS) -> web.Application:
    """The app of one build: shared routes, that build's databases (opened at start-up
    and closed at shutdown through `cleanup_ctx`), a Store per request, audit rows for
    errors and for the reads in `audited`, the AI coach at `coach_url` (none: the slow
    route answers 503), `X-Backend: <backend>` on every reply."""
    app = web.Application(middlewares=[store_middleware, audit_middleware, error_middleware],
                          client_max_size=64 * 1024)
    app[BACKEND] = backend
    app[SESSIONS] = sessions
    app[AUDITED] = dict(audited)
    if coach_url is not None:
        app[COACH] = coach_url

    async def database_context(app: web.Application):
        async with open_database() as database, aiohttp.ClientSession(
                trust_env=False, timeout=aiohttp.ClientTimeout(total=30)) as http:
            app[DATABASE] = database
            app[HTTP] = http
            yield

    app.cleanup_ctx.append(database_context)
    app.on_response_prepare.append(tag_backend)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app
