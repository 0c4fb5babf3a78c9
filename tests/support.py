"""Helpers shared by the tests: configs, a running proxy, and small upstream apps."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import aiohttp
from aiohttp import web

from shadow.app import Runtime
from shadow.config import Config, parse_config

HITS = web.AppKey("hits", dict)
VIEWER_TOKEN = "viewer-token-of-the-tests"
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def config_data(tmp_path, legacy_url: str, candidate_url: str, **overrides: Any) -> dict:
    """A config document on loopback port 0 with a state file in tmp_path; a dict given
    for a section is merged into that section's defaults here. A/A calibration is off
    unless a test asks for it: its extra requests to the primary's build are random, and
    many tests count exactly what each backend received."""
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "mode": "shadow",
        "backends": {"legacy": {"url": legacy_url}, "candidate": {"url": candidate_url}},
        "store": {"path": str(tmp_path / "state.db")},
        "noise": {"share": 0.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def make_config(tmp_path, legacy_url: str, candidate_url: str, **overrides: Any) -> Config:
    """A validated config (see `config_data`)."""
    return parse_config(config_data(tmp_path, legacy_url, candidate_url, **overrides))


@contextlib.asynccontextmanager
async def running(config: Config):
    """A started Runtime; always stopped, even when the test fails."""
    runtime = Runtime(config)
    try:
        await runtime.start()
        yield runtime
    finally:
        await runtime.stop(deadline=5.0)


@contextlib.asynccontextmanager
async def rows_proxy(legacy: str, sqlite_path, candidate: str, pg_dsn: str, tmp_path,
                     routes: list[dict]):
    """A running proxy in front of the builds at `legacy` (on the SQLite file
    `sqlite_path`) and `candidate` (on `pg_dsn`), with row capture installed on both
    first; yields (proxy base url, the comparisons the verifier concluded, the runtime)."""
    from shadow.config import row_rules
    from shadow.rows.live import open_capture

    config = parse_config({
        "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
        "backends": {"legacy": {"url": legacy, "database": f"sqlite:///{sqlite_path}"},
                     "candidate": {"url": candidate, "database": pg_dsn}},
        "routes": routes, "store": {"path": str(tmp_path / "state.db")},
    })
    for name in ("legacy", "candidate"):
        capture = open_capture(config.backends[name].database, row_rules(config))
        await capture.open()
        try:
            await capture.install()
        finally:
            await capture.close()
    async with running(config) as runtime:
        comparisons: list = []
        runtime.verifier.listeners.append(comparisons.append)
        yield f"http://127.0.0.1:{runtime.proxy_port}", comparisons, runtime


async def settle(runtime: Runtime, concluded: int, timeout: float = 10.0) -> None:
    """Wait until the verifier has concluded `concluded` exchanges in all."""
    async with asyncio.timeout(timeout):
        while runtime.verifier.concluded < concluded:
            await asyncio.sleep(0.01)


def sample_value(runtime: Runtime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def proxy_url(runtime: Runtime, path: str = "") -> str:
    return f"http://127.0.0.1:{runtime.proxy_port}{path}"


def admin_url(runtime: Runtime, path: str = "") -> str:
    return f"http://127.0.0.1:{runtime.admin_port}{path}"


def reader() -> aiohttp.ClientSession:
    """A client session that reads the admin API with the viewer token."""
    return aiohttp.ClientSession(headers=VIEWER)


def browser() -> aiohttp.ClientSession:
    """A client session that keeps cookies from 127.0.0.1, as a browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(client: aiohttp.ClientSession, runtime: Runtime, token: str) -> str:
    """Log in through the browser's form (checking the session cookie's flags); returns
    the session's CSRF token from the page header."""
    async with client.get(admin_url(runtime, "/login")) as reply:
        nonce = re.search(r'name="csrf" value="([^"]+)"', await reply.text()).group(1)
    async with client.post(admin_url(runtime, "/login"), allow_redirects=False,
                           data={"token": token, "csrf": nonce, "next": "/"}) as reply:
        assert reply.status == 303, await reply.text()
        cookie = reply.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
    async with client.get(admin_url(runtime, "/")) as reply:
        assert reply.status == 200
        return re.search(r'name="csrf" value="([^"]+)"', await reply.text()).group(1)


def counting(app: web.Application) -> web.Application:
    """Counts the requests an app receives in app['hits'] (path -> n)."""
    hits: dict[str, int] = {}

    @web.middleware
    async def count(request, handler):
        hits[request.path] = hits.get(request.path, 0) + 1
        return await handler(request)

    app.middlewares.append(count)
    app[HITS] = hits
    return app


def ok_app() -> web.Application:
    """Answers every request with the same small JSON reply."""
    app = web.Application()

    async def reply(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_route("*", "/{tail:.*}", reply)
    return app
