"""Who may use the admin listener: tokens, browser sessions, CSRF, and the read log.

    /healthz, /metrics        open (no value from a request reaches them)
    GET /login, POST /login   the browser's login form (a token, once)
    POST /logout              ends the browser session
    any other GET or HEAD     a viewer or the admin: `Authorization: Bearer <token>` or a
                              session cookie
    any other method          the admin only; with a session cookie, also the session's
                              CSRF token (form field `csrf` or header `X-CSRF-Token`)

Tokens come from the environment variables named in config (`viewer_token_env`,
`admin_token_env`) at start-up and are compared in constant time; they never appear in
a log, a page or an answer. Without a viewer token, reads are refused (403) with a
message saying how to set one, so nothing is open by default. A browser login makes an
HTTP-only, `SameSite=Strict` session cookie that expires after `session_minutes`;
sessions live in memory (a restart logs everyone out). Every read of stored samples is
recorded in the store's read log: who, what, when.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

OPEN = frozenset({"/healthz", "/metrics", "/login"})
COOKIE, LOGIN_COOKIE = "shadow_session", "shadow_login"
MAX_SESSIONS = 1000
IDENTITY = web.RequestKey("identity", "Identity")
SAMPLE_READS = ("/api/samples/", "/samples/", "/api/mismatches", "/signatures", "/findings/")
"""Reads that show stored samples (a finding's page shows its newest sample's request)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who made a request: `role` is 'admin' or 'viewer', `name` the configured name,
    `via` 'bearer' or 'session <id prefix>' (for the read log)."""

    role: str
    name: str
    via: str
    csrf: str = ""


@dataclass(slots=True)
class _Session:
    identity: Identity
    expires: float


class Auth:
    """Tokens and sessions of one admin listener."""

    def __init__(self, *, admin_token: str | None, viewer_token: str | None,
                 admin_env: str, viewer_env: str, admin_name: str = "admin",
                 viewer_name: str = "viewer", session_seconds: float = 8 * 3600,
                 on_read: Callable[[str, str], None] | None = None) -> None:
        self.tokens = [(t.encode(), role, name) for t, role, name in (
            (admin_token, "admin", admin_name), (viewer_token, "viewer", viewer_name)) if t]
        self.admin_env, self.viewer_env = admin_env, viewer_env
        self.has_admin, self.has_viewer = bool(admin_token), bool(viewer_token)
        self.session_seconds = session_seconds
        self.sessions: dict[str, _Session] = {}
        self.on_read = on_read
        self.clock: Callable[[], float] = time.time

    def check(self, token: str) -> tuple[str, str] | None:
        """(role, name) of a token, or None. Compares against every token in constant time."""
        given, found = token.encode(), None
        for known, role, name in self.tokens:
            if hmac.compare_digest(given, known) and found is None:
                found = (role, name)
        return found

    def login(self, token: str) -> str | None:
        """A new session id for a valid token, or None."""
        found = self.check(token)
        if found is None:
            return None
        now = self.clock()
        for sid in [s for s, v in self.sessions.items() if v.expires <= now]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = _Session(
            Identity(found[0], found[1], f"session {sid[:6]}", secrets.token_urlsafe(24)),
            now + self.session_seconds)
        return sid

    def identify(self, request: web.Request) -> Identity | None | bool:
        """The request's Identity; None without credentials; False for a wrong bearer."""
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme:
            found = self.check(given.strip()) if scheme.lower() == "bearer" else None
            return Identity(found[0], found[1], "bearer") if found else False
        sid = request.cookies.get(COOKIE)
        session = self.sessions.get(sid) if sid else None
        if session is None:
            return None
        if session.expires <= self.clock():
            del self.sessions[sid]
            return None
        return session.identity

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def authorise(request: web.Request, handler) -> web.StreamResponse:
            if request.path in OPEN:
                return await handler(request)
            reading = request.method in ("GET", "HEAD")
            identity = self.identify(request)
            refused = self.refusal(request, identity, reading, request.path == "/logout")
            if refused is not None:
                return refused
            if not reading and identity.via != "bearer":
                form = await request.post() if request.content_type.endswith("form-urlencoded") \
                    else {}
                given = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
                if not hmac.compare_digest(given.encode(), identity.csrf.encode()):
                    return _refuse(403, "csrf", "this form is stale or was not made here "
                                                "(CSRF token missing or wrong); reload it")
            request[IDENTITY] = identity
            response = await handler(request)
            if reading and response.status == 200 and self.on_read is not None \
                    and request.path.startswith(SAMPLE_READS):
                self.on_read(f"{identity.name} ({identity.via})", request.path_qs)
            return response
        return authorise

    def refusal(self, request: web.Request, identity: Identity | None | bool,
                reading: bool, leaving: bool = False) -> web.StreamResponse | None:
        """The answer refusing this request, or None when it may go on. `leaving`: a
        logout, which any session may do."""
        changing = not reading and not leaving
        if changing and not self.has_admin:
            return _refuse(403, "forbidden", f"changes are disabled: no admin token was set "
                                             f"in ${self.admin_env} at start-up")
        if identity is False:
            return _refuse(401, "unauthorized", "a valid 'Authorization: Bearer' token is needed")
        if identity is None:
            if reading and not self.has_viewer and not self.has_admin:
                return _refuse(403, "forbidden", f"reading is disabled: set ${self.viewer_env} "
                                                 "to a read-only token (and restart) to use the "
                                                 "browser and the read APIs")
            if reading and not request.path.startswith("/api/"):
                raise web.HTTPSeeOther(f"/login?next={_quote(request.path_qs)}")
            return _refuse(401, "unauthorized", "a valid 'Authorization: Bearer' token or a "
                                                "browser login (/login) is needed")
        if changing and identity.role != "admin":
            return _refuse(403, "forbidden", "the viewer token reads only; changes need the "
                                             "admin token")
        return None


def _refuse(status: int, error: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="shadow"'} if status == 401 else None
    return web.Response(status=status, headers=headers, content_type="application/json",
                        body=orjson.dumps({"error": error, "message": message}))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def identity_of(request: web.Request) -> Identity | None:
    """The Identity the middleware let through (None on an open route)."""
    return request.get(IDENTITY)


def add_routes(app: web.Application, auth: Auth, render: Callable[[str, str], str]) -> None:
    """The login and logout routes; `render(title, body)` makes a whole page."""

    def safe_next(value: Any) -> str:
        value = str(value or "/")
        return value if value.startswith("/") and not value.startswith("//") else "/"

    def form(next_url: str, nonce: str, message: str = "") -> str:
        from html import escape

        note = f'<p class="bad">{escape(message)}</p>' if message else ""
        return (f"<h1>Log in</h1>{note}<form method=\"post\" action=\"/login\">"
                f'<label>token<input type="password" name="token" id="token" '
                f'autocomplete="off" required></label>'
                f'<input type="hidden" name="csrf" value="{escape(nonce)}">'
                f'<input type="hidden" name="next" value="{escape(next_url)}">'
                '<button type="submit" id="login">Log in</button></form>'
                f'<p class="muted">The viewer token (${escape(auth.viewer_env)}) reads; the '
                f'admin token (${escape(auth.admin_env)}) also changes.</p>')

    def login_page(request: web.Request, next_url: str, status: int = 200,
                   message: str = "") -> web.Response:
        # One nonce per browser while it lasts: a second page (another tab, the favicon's
        # redirect) must not make the first form stale.
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if len(nonce) != 32:
            nonce = secrets.token_urlsafe(24)
        response = web.Response(text=render("Log in", form(next_url, nonce, message)),
                                status=status, content_type="text/html",
                                headers={"Cache-Control": "no-store"})
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="Strict",
                            max_age=600, path="/login")
        return response

    async def show(request: web.Request) -> web.Response:
        return login_page(request, safe_next(request.query.get("next")))

    async def submit(request: web.Request) -> web.Response:
        data = await request.post()
        next_url = safe_next(data.get("next"))
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(nonce.encode(), str(data.get("csrf", "")).encode()):
            return login_page(request, next_url, 403, "the form was stale; try again")
        sid = auth.login(str(data.get("token", "")))
        if sid is None:
            return login_page(request, next_url, 401, "that token is not valid")
        response = web.HTTPSeeOther(next_url)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict",
                            max_age=int(auth.session_seconds), path="/")
        response.del_cookie(LOGIN_COOKIE, path="/login")
        raise response

    async def logout(request: web.Request) -> web.Response:
        sid = request.cookies.get(COOKIE)
        auth.sessions.pop(sid or "", None)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    app.router.add_get("/login", show)
    app.router.add_post("/login", submit)
    app.router.add_post("/logout", logout)
