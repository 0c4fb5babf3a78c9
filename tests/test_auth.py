"""Who may use the admin listener, over real sockets: every route without a token, with a
wrong one, with the viewer's and the admin's; browser sessions (login, CSRF, expiry,
logout); the read log; and the marker header, which only the proxy may set."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest
from aiohttp import web

from shadow.marker import verify
from tests.support import (
    VIEWER, admin_url, browser, login, make_config, proxy_url, running, sample_value, settle,
)

ADMIN_TOKEN = "admin-token-of-the-auth-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPEN = {"/healthz", "/metrics", "/login", "/logout"}
MARKER_SECRET = "marker-secret-of-the-tests"
SEEN = web.AppKey("seen", list)


def echo(tag: str) -> web.Application:
    """Answers with the headers it received; the two builds differ in `tag`."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        markers = request.headers.getall("X-Shadow-Request", [])
        return web.json_response({"tag": tag, "markers": len(markers)})

    app = web.Application()
    app[SEEN] = seen
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def stack(aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("SHADOW_MARKER_SECRET", MARKER_SECRET)
    legacy, candidate = await aiohttp_server(echo("legacy")), await aiohttp_server(echo("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime:
        yield runtime, legacy.app[SEEN], candidate.app[SEEN]


def admin_routes(runtime) -> list[tuple[str, str]]:
    """(method, path) of every route of the admin listener, ids filled in."""
    app = runtime.runners[1].app
    out = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical.replace("{id}", "1")
        out.append((route.method, path))
    return sorted(set(out))


async def status_of(method: str, url: str, headers=None, **kwargs) -> int:
    async with aiohttp.ClientSession() as client:
        async with client.request(method, url, headers=headers, allow_redirects=False,
                                  **kwargs) as reply:
            return reply.status


async def test_every_admin_route_needs_the_right_token(stack):
    runtime, _, _ = stack
    routes = admin_routes(runtime)
    assert ("POST", "/api/mode") in routes and ("GET", "/samples/1") in routes
    for method, path in routes:
        url = admin_url(runtime, path)
        if path in OPEN:
            continue
        body = {"json": {}} if method == "POST" else {}
        none = await status_of(method, url, **body)
        wrong = await status_of(method, url, {"Authorization": "Bearer nope"}, **body)
        viewer = await status_of(method, url, VIEWER, **body)
        admin = await status_of(method, url, ADMIN, **body)
        assert wrong == 401, (method, path)
        if method == "GET":
            assert none == (401 if path.startswith("/api/") else 303), (method, path)
            assert viewer not in (401, 403) and admin not in (401, 403), (method, path)
        else:
            assert none == 401 and viewer == 403, (method, path)
            assert admin not in (401, 403), (method, path)
    assert runtime.modes.current.mode == "shadow"
    for path in ("/healthz", "/metrics"):
        assert await status_of("GET", admin_url(runtime, path)) == 200


async def test_without_a_viewer_token_reads_are_refused_and_say_how_to_set_one(
        aiohttp_server, tmp_path, monkeypatch):
    monkeypatch.delenv("SHADOW_VIEWER_TOKEN")
    monkeypatch.delenv("SHADOW_ADMIN_TOKEN", raising=False)
    legacy, candidate = await aiohttp_server(echo("x")), await aiohttp_server(echo("x"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        for path in ("/api/mismatches", "/api/status", "/", "/samples/1"):
            async with client.get(admin_url(runtime, path), allow_redirects=False) as reply:
                assert reply.status == 403, path
                assert "SHADOW_VIEWER_TOKEN" in (await reply.json())["message"]
        async with client.get(admin_url(runtime, "/healthz")) as reply:
            assert reply.status == 200


async def test_a_browser_session_changes_only_with_its_csrf_token(stack):
    runtime, _, _ = stack
    mode = admin_url(runtime, "/api/mode")
    change = {"mode": "legacy-only", "reason": "maintenance"}
    async with browser() as client:
        csrf = await login(client, runtime, ADMIN_TOKEN)
        async with client.post(mode, json=change) as reply:
            assert reply.status == 403 and (await reply.json())["error"] == "csrf"
        async with client.post(mode, json=change, headers={"X-CSRF-Token": "forged"}) as reply:
            assert reply.status == 403
        assert runtime.modes.current.mode == "shadow"
        async with client.post(mode, json=change, headers={"X-CSRF-Token": csrf}) as reply:
            assert reply.status == 200
        assert runtime.modes.current.mode == "legacy-only"
        async with client.post(admin_url(runtime, "/logout"), data={"csrf": "forged"},
                               allow_redirects=False) as reply:
            assert reply.status == 403
        async with client.post(admin_url(runtime, "/logout"), data={"csrf": csrf},
                               allow_redirects=False) as reply:
            assert reply.status == 303
        async with client.get(admin_url(runtime, "/api/status")) as reply:
            assert reply.status == 401


async def test_a_viewer_session_cannot_change_the_mode_even_with_its_csrf_token(stack):
    runtime, _, _ = stack
    async with browser() as client:
        csrf = await login(client, runtime, VIEWER["Authorization"].split()[1])
        async with client.post(admin_url(runtime, "/api/mode"), headers={"X-CSRF-Token": csrf},
                               json={"mode": "legacy-only", "reason": "x"}) as reply:
            assert reply.status == 403 and "viewer" in (await reply.json())["message"]
    assert runtime.modes.current.mode == "shadow"


async def test_the_login_form_needs_its_own_nonce_and_a_valid_token(stack):
    runtime, _, _ = stack
    async with browser() as client:
        async with client.post(admin_url(runtime, "/login"), allow_redirects=False,
                               data={"token": ADMIN_TOKEN, "csrf": "x", "next": "/"}) as reply:
            assert reply.status == 403
            assert "shadow_session" not in reply.headers.get("Set-Cookie", "")
        async with client.get(admin_url(runtime, "/login")) as reply:
            nonce = re.search(r'name="csrf" value="([^"]+)"', await reply.text()).group(1)
        async with client.post(admin_url(runtime, "/login"), allow_redirects=False,
                               data={"token": "wrong", "csrf": nonce}) as reply:
            assert reply.status == 401
        async with client.post(admin_url(runtime, "/login"), allow_redirects=False,
                               data={"token": ADMIN_TOKEN, "csrf": nonce,
                                     "next": "//evil.example/"}) as reply:
            assert reply.status == 303 and reply.headers["Location"] == "/"


async def test_a_session_expires(stack):
    runtime, _, _ = stack
    async with browser() as client:
        await login(client, runtime, ADMIN_TOKEN)
        runtime.auth.clock = lambda: time.time() + 8 * 3600 + 1
        async with client.get(admin_url(runtime, "/"), allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"].startswith("/login")
        async with client.get(admin_url(runtime, "/api/status")) as reply:
            assert reply.status == 401
    assert runtime.auth.sessions == {}


async def test_reads_of_samples_are_logged_with_who_and_what(stack):
    runtime, _, _ = stack
    async with aiohttp.ClientSession() as client:
        async with client.get(proxy_url(runtime, "/api/x")) as reply:
            assert reply.status == 200
        await settle(runtime, 1)
        await runtime.store.flush()
        for path in ("/api/samples/1", "/findings/1", "/api/status"):
            async with client.get(admin_url(runtime, path), headers=VIEWER) as reply:
                assert reply.status == 200, path
        async with client.get(admin_url(runtime, "/api/reads"), headers=ADMIN) as reply:
            reads = (await reply.json())["reads"]
    assert [(r["who"], r["what"]) for r in reads] == [("viewer (bearer)", "/findings/1"),
                                                      ("viewer (bearer)", "/api/samples/1")]
    assert reads[0]["at"] > 0


async def test_a_client_marker_header_never_reaches_a_backend(stack):
    runtime, legacy_seen, candidate_seen = stack
    async with aiohttp.ClientSession() as client:
        for name in ("X-Shadow-Request", "x-shadow-request"):
            headers = {name: "1"}
            async with client.get(proxy_url(runtime, "/api/pay"), headers=headers) as reply:
                assert (await reply.json())["markers"] == 0
    await settle(runtime, 2)
    assert all("x-shadow-request" not in h for h in legacy_seen)
    markers = [h["x-shadow-request"] for h in candidate_seen]
    assert len(markers) == 2 and all(verify(v, MARKER_SECRET) for v in markers)
    assert len(set(markers)) == 2, "each shadow request has its own marker value"
    assert sample_value(runtime, "shadow_marker_stripped_total") == 2
