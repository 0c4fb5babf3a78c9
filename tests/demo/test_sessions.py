"""Signed-cookie sessions work across builds; password hashes stay in the databases."""

from __future__ import annotations

import sqlite3

import aiohttp
import asyncpg

from shadow.demo.auth import COOKIE_NAME, CSRF_HEADER, SessionCodec, hash_password, verify_password

T0 = 1_780_000_123.0
ALICE = {"username": "alice", "password": "alice-demo-pass"}


def test_a_cookie_reads_back_and_is_the_same_within_one_window():
    codec = SessionCodec(secret=b"s", ttl=1000, window=100, clock=lambda: T0)
    value, expires = codec.issue(42)
    assert codec.read(value) == 42
    assert expires == T0 - T0 % 100 + 1000
    later = SessionCodec(secret=b"s", ttl=1000, window=100, clock=lambda: T0 + 50)
    assert later.issue(42)[0] == value
    next_window = SessionCodec(secret=b"s", ttl=1000, window=100, clock=lambda: T0 + 100)
    assert next_window.issue(42)[0] != value


def test_forged_expired_or_malformed_cookies_are_refused():
    codec = SessionCodec(secret=b"s", clock=lambda: T0)
    value, expires = codec.issue(7)
    user, exp, sig = value.split(".")
    for bad in (f"8.{exp}.{sig}", f"{user}.{int(exp) + 1}.{sig}", f"{user}.{exp}.{sig[:-1]}",
                "", "7", "a.b.c", f"{user}.{exp}", f"{value}.x", "٧.1.x"):
        assert codec.read(bad) is None, bad
    assert SessionCodec(secret=b"other", clock=lambda: T0).read(value) is None
    assert SessionCodec(secret=b"s", clock=lambda: expires).read(value) is None


def test_csrf_tokens_are_fresh_valid_on_both_builds_and_expire():
    now = [T0]
    issuer = SessionCodec(secret=b"s", clock=lambda: now[0])
    other = SessionCodec(secret=b"s", clock=lambda: now[0])
    first, second = issuer.csrf_token(), issuer.csrf_token()
    assert first != second and other.csrf_valid(first) and other.csrf_valid(second)
    nonce, issued, sig = first.split(".")
    for bad in (None, "", "a.b", f"{nonce}.{int(issued) + 1}.{sig}", f"x{nonce}.{issued}.{sig}",
                f"{nonce}.{issued}.{sig[:-1]}"):
        assert not other.csrf_valid(bad), bad
    assert not SessionCodec(secret=b"t", clock=lambda: now[0]).csrf_valid(first)
    now[0] += issuer.csrf_ttl + 1
    assert not other.csrf_valid(first)


def test_passwords_are_salted_and_verified():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$") and "correct" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("wrong horse", first)
    for malformed in ("", "plain", "md5$1$1$1$aa$bb", "scrypt$x$8$1$aa$bb"):
        assert not verify_password("correct horse", malformed)


async def _session(server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=server.make_url("/"),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _post(server, path, body, cookie=None):
    """POST `body`; a login first fetches its CSRF token from the same build."""
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    async with await _session(server) as session:
        if path == "/api/login":
            async with session.get("/api/csrf") as response:
                headers[CSRF_HEADER] = (await response.json())["csrf_token"]
        async with session.post(path, json=body, headers=headers) as response:
            return response.status, await response.read(), response.headers.getall("Set-Cookie", [])


async def _me(server, cookie):
    async with await _session(server) as session:
        async with session.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={cookie}"}) as r:
            return r.status, await r.read()


def _value(set_cookie: list[str]) -> str:
    return set_cookie[0].split(";")[0].split("=", 1)[1]


async def test_a_cookie_issued_by_one_build_is_valid_on_the_other(builds):
    legacy, candidate = await builds()
    for issuer, other in ((legacy, candidate), (candidate, legacy)):
        status, body, set_cookie = await _post(issuer, "/api/login", ALICE)
        assert status == 200
        assert await _me(other, _value(set_cookie)) == (200, body)


async def test_both_builds_issue_byte_identical_set_cookie_lines(builds):
    codec = SessionCodec(clock=lambda: T0)
    legacy, candidate = await builds(sessions=codec)
    fresh = {"username": "new_user", "password": "new-user-pass"}
    lines = {}
    for path, body in (("/api/login", ALICE), ("/api/register", fresh), ("/api/logout", {})):
        (status_l, _, cookie_l), (status_c, _, cookie_c) = [
            await _post(server, path, body) for server in (legacy, candidate)]
        assert status_l == status_c and status_l in (200, 201)
        assert len(cookie_l) == 1 and cookie_l == cookie_c, path
        lines[path] = cookie_l[0]
    assert "HttpOnly" in lines["/api/login"] and "SameSite=Lax" in lines["/api/login"]
    assert "Max-Age=0" in lines["/api/logout"]


async def test_sessions_expire_and_forged_cookies_get_401(builds):
    now = [T0]
    codec = SessionCodec(clock=lambda: now[0])
    legacy, candidate = await builds(sessions=codec)
    _, _, set_cookie = await _post(legacy, "/api/login", ALICE)
    value = _value(set_cookie)
    forged = "1" + value[1:]
    for server in (legacy, candidate):
        assert (await _me(server, value))[0] == 200
        assert (await _me(server, forged))[0] == 401
    now[0] += codec.ttl + codec.window
    for server in (legacy, candidate):
        assert (await _me(server, value))[0] == 401


async def test_password_hashes_live_only_in_the_databases(builds, seeded):
    legacy, candidate = await builds()
    secret = "my-secret-pass"
    for server in (legacy, candidate):
        status, body, _ = await _post(server, "/api/register",
                                      {"username": "hasher", "password": secret})
        assert status == 201 and b"scrypt" not in body and secret.encode() not in body
        assert (await _post(server, "/api/login",
                            {"username": "hasher", "password": secret}))[0] == 200
    db_path, dsn = seeded
    with sqlite3.connect(db_path) as db:
        stored_l = db.execute("SELECT password_hash FROM users WHERE username = 'hasher'"
                              ).fetchone()[0]
    conn = await asyncpg.connect(dsn)
    try:
        stored_c = await conn.fetchval(
            "SELECT password_hash FROM users WHERE username = 'hasher'")
    finally:
        await conn.close()
    for stored in (stored_l, stored_c):
        assert stored.startswith("scrypt$") and secret not in stored
        assert verify_password(secret, stored)
