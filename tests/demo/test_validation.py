"""Both builds refuse bad input the same way: 400/401/403/404/409/413, never a 500."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from shadow.demo.auth import CSRF_HEADER
from shadow.demo.seed import seed_data

from .lockstep import same_body

_SEEDED = seed_data().rows
BOBS_MOOD = next(row[0] for row in _SEEDED["moods"] if row[1] == 3)
BOBS_ENTRY = next(row[0] for row in _SEEDED["journal_entries"] if row[1] == 3)
ALICES_ENTRY = next(row[0] for row in _SEEDED["journal_entries"] if row[1] == 2)
LOGIN = {"username": "alice", "password": "alice-demo-pass"}
OK = {"username": "fresh_name", "password": "long-enough"}

ANONYMOUS: list[tuple[str, str, Any, int]] = [
    ("GET", "/api/me", None, 401),
    ("POST", "/api/moods", {"score": 5}, 401),
    ("GET", "/api/admin/stats", None, 401),
    ("GET", "/api/inbox", None, 401),
    ("POST", "/api/register", b"", 400),
    ("POST", "/api/register", b"not json", 400),
    ("POST", "/api/register", [], 400),
    ("POST", "/api/register", {**OK, "username": "ab"}, 400),
    ("POST", "/api/register", {**OK, "username": "x" * 33}, 400),
    ("POST", "/api/register", {**OK, "username": "has space"}, 400),
    ("POST", "/api/register", {**OK, "username": 42}, 400),
    ("POST", "/api/register", {**OK, "username": "nul\x00name"}, 400),
    ("POST", "/api/register", {**OK, "password": "short"}, 400),
    ("POST", "/api/register", {"username": "fresh_name"}, 400),
    ("POST", "/api/register", {**OK, "username": "alice"}, 409),
    ("POST", "/api/login", {**LOGIN, "password": "wrong-password"}, 401),
    ("POST", "/api/login", {"username": "nobody", "password": "whatever-pass"}, 401),
    ("POST", "/api/login", {"password": "x"}, 400),
    ("POST", "/api/login", {"username": ["alice"], "password": "x"}, 400),
    ("GET", "/api/nothing-here", None, 404),
    ("DELETE", "/api/moods", None, 405),
]

LOGGED_IN: list[tuple[str, str, Any, int]] = [
    *[("POST", "/api/moods", {"score": score}, 400)
      for score in (0, 11, -3, "7", 7.5, 7.0, True, None)],
    ("POST", "/api/moods", b'{"score": 1000000000000000000000000000000}', 400),
    ("POST", "/api/moods", {}, 400),
    ("POST", "/api/moods", b'{"score": 1e400}', 400),
    ("POST", "/api/moods", b'{"score": NaN}', 400),
    ("POST", "/api/moods", b'{"score": 5, "note": "\\ud800"}', 400),
    ("POST", "/api/moods", {"score": 5, "note": 12}, 400),
    ("POST", "/api/moods", {"score": 5, "note": "x" * 501}, 400),
    ("POST", "/api/moods", {"score": 5, "note": "a\x00b"}, 400),
    *[("POST", "/api/moods", {"score": 5, "tags": tags}, 400)
      for tags in ("sleep", [1], ["Sleep"], ["a", "a"], [f"t{i}" for i in range(11)])],
    *[("POST", "/api/moods", {"score": 5, "sleep_hours": hours}, 400)
      for hours in (-1, 25, "8", True)],
    *[("GET", f"/api/moods?limit={limit}", None, 400)
      for limit in ("0", "abc", "101", "-1", "99999999999999999999")],
    *[("GET", f"/api/moods/{mood}", None, 404)
      for mood in ("abc", "0", "-1", "99999999999", "2147483647", "%EF%BC%91", BOBS_MOOD)],
    ("POST", "/api/journal", {}, 400),
    ("POST", "/api/journal", {"title": "   "}, 400),
    ("POST", "/api/journal", {"title": "x" * 121}, 400),
    ("POST", "/api/journal", {"title": "ok", "body": 5}, 400),
    ("POST", "/api/journal", {"title": "ok", "private": "yes"}, 400),
    ("POST", "/api/journal", {"title": "ok", "private": 1}, 400),
    ("POST", "/api/journal", {"title": "big", "body": "x" * 70_000}, 413),
    ("GET", "/api/journal?q=" + "x" * 101, None, 400),
    ("GET", "/api/journal?q=%00", None, 400),
    ("GET", "/api/journal?limit=201", None, 400),
    ("GET", "/api/journal/999", None, 404),
    ("GET", f"/api/journal/{BOBS_ENTRY}", None, 404),
    ("PUT", f"/api/journal/{ALICES_ENTRY}", {}, 400),
    ("PUT", f"/api/journal/{ALICES_ENTRY}", {"private": None}, 400),
    ("PUT", f"/api/journal/{ALICES_ENTRY}", {"title": ""}, 400),
    ("PUT", "/api/journal/999", {"title": "x"}, 404),
    ("PUT", f"/api/journal/{BOBS_ENTRY}", {"title": "x"}, 404),
    ("DELETE", "/api/journal/999", None, 404),
    ("DELETE", "/api/journal/abc", None, 404),
    ("POST", "/api/messages", {"to": "bob"}, 400),
    ("POST", "/api/messages", {"to": "bob", "body": "  "}, 400),
    ("POST", "/api/messages", {"to": "bob", "body": "x" * 2001}, 400),
    ("POST", "/api/messages", {"body": "hi"}, 400),
    ("POST", "/api/messages", {"to": "alice", "body": "hi"}, 400),
    ("POST", "/api/messages", {"to": "nobody", "body": "hi"}, 404),
    ("GET", "/api/conversations/nobody", None, 404),
    ("POST", "/api/conversations/nobody/read", None, 404),
    ("GET", "/api/admin/stats", None, 403),
    ("GET", "/api/admin/audit", None, 403),
    *[("POST", "/api/reflections", body, 400)
      for body in ({}, {"entry_id": "1"}, {"entry_id": 0}, {"entry_id": 2**31})],
    ("POST", "/api/reflections", {"entry_id": 999}, 404),
    ("POST", "/api/reflections", {"entry_id": BOBS_ENTRY}, 404),
    ("GET", "/api/reflections?limit=0", None, 400),
]

ACCEPTED: list[tuple[str, str, Any, int]] = [
    ("POST", "/api/moods", {"score": 5, "note": "", "tags": [], "sleep_hours": 7}, 201),
    ("POST", "/api/moods", {"score": 6, "note": "Été 😊", "sleep_hours": None}, 201),
    ("GET", "/api/moods?limit=2", None, 200),
    ("POST", "/api/journal", {"title": "50% done_ok \\ fine", "body": ""}, 201),
    *[("GET", f"/api/journal?q={q}", None, 200) for q in ("%25", "_", "%5C", "WALK", "")],
    ("GET", "/api/moods/%2B1", None, 404),
]


async def _send(session: aiohttp.ClientSession, method: str, path: str,
                body: Any) -> tuple[int, bytes]:
    """Send one request; a login first fetches the CSRF token it needs."""
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    headers = {}
    if path == "/api/login":
        async with session.get("/api/csrf") as response:
            headers[CSRF_HEADER] = (await response.json())["csrf_token"]
    async with session.request(method, path, data=data, headers=headers) as response:
        return response.status, await response.read()


async def _sessions(servers: tuple[TestServer, ...], *, login: bool):
    sessions = [aiohttp.ClientSession(base_url=s.make_url("/"),
                                      cookie_jar=aiohttp.CookieJar(unsafe=True))
                for s in servers]
    if login:
        for session in sessions:
            assert (await _send(session, "POST", "/api/login", LOGIN))[0] == 200
    return sessions


async def _check(servers, cases, *, login: bool, error: bool) -> list[str]:
    problems = []
    sessions = await _sessions(servers, login=login)
    try:
        for method, path, body, expected in cases:
            (status_l, reply_l), (status_c, reply_c) = [
                await _send(session, method, path, body) for session in sessions]
            case = f"{method} {path[:60]} {str(body)[:60]}"
            if (status_l, status_c) != (expected, expected):
                problems.append(f"{case}: {status_l}/{status_c}, expected {expected}")
            elif not same_body(reply_l, reply_c):
                problems.append(f"{case}: {reply_l!r} != {reply_c!r}")
            elif error and set(orjson.loads(reply_l)) != {"error", "error_id"}:
                problems.append(f"{case}: not an error body: {reply_l!r}")
    finally:
        for session in sessions:
            await session.close()
    return problems


async def test_both_builds_refuse_bad_input_alike(builds):
    servers = await builds()
    problems = await _check(servers, ANONYMOUS, login=False, error=True)
    problems += await _check(servers, LOGGED_IN, login=True, error=True)
    assert problems == []


async def test_both_builds_accept_awkward_but_valid_input_alike(builds):
    servers = await builds()
    assert await _check(servers, ACCEPTED, login=True, error=False) == []
