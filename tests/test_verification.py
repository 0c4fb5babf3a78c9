"""Verification through real servers: counted where it happens, grouped into signatures,
rules honoured, and nothing secret kept in the clear."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from shadow.privacy import NOT_STORED
from tests.support import (
    admin_url, make_config, proxy_url, reader, running, sample_value, settle,
)

SECRET = "hunter2-0d7c1f"
NOTE = "I felt panicky at the clinic"


def backend(tag: str) -> web.Application:
    """The same API on both sides, except /api/stats, where the candidate renders the
    average as a string, and /api/feed, where the order of tags differs."""
    app = web.Application()

    async def mood(request):
        return web.json_response({"id": int(request.match_info["id"]), "score": 6,
                                  "served_by": tag, "note": NOTE})

    async def stats(request):
        return web.json_response({"average": 6.5 if tag == "legacy" else "6.5000"})

    async def feed(request):
        tags = ["calm", "tired"] if tag == "legacy" else ["tired", "calm"]
        return web.json_response({"tags": tags, "request_id": f"{tag}-{time.time()}"})

    async def login(request):
        await request.read()
        response = web.json_response({"ok": True, "token": f"tok-{tag}-{SECRET}"})
        response.set_cookie("session", SECRET)
        return response

    app.router.add_get("/api/mood/{id}", mood)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/feed", feed)
    app.router.add_post("/api/login", login)
    return app


@pytest.fixture
async def servers(aiohttp_server):
    return await aiohttp_server(backend("legacy")), await aiohttp_server(backend("candidate"))


async def test_a_mismatch_on_one_route_is_counted_exactly_there(servers, tmp_path):
    legacy, candidate = servers
    config = make_config(
        tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
        routes=[{"template": "/api/mood/{id}", "ignore_paths": ["$.served_by"]},
                {"template": "/api/feed", "unordered_paths": ["$.tags"],
                 "ignore_paths": ["$.request_id"]}, {"template": "/api/stats"}])
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            for i in range(20):
                for path in (f"/api/mood/{i}", "/api/stats", "/api/feed"):
                    async with session.get(proxy_url(runtime, path)) as resp:
                        assert resp.status == 200
        await settle(runtime, 60)
        count = lambda route, verdict: sample_value(  # noqa: E731
            runtime, "shadow_requests_total", route=route, method="GET", verdict=verdict)
        assert count("/api/stats", "mismatch") == 20
        assert count("/api/mood/{id}", "match") == 20 and count("/api/mood/{id}", "mismatch") == 0
        assert count("/api/feed", "match") == 20 and count("/api/feed", "mismatch") == 0
        assert sample_value(runtime, "shadow_mismatches_total", route="/api/stats",
                            method="GET", kind="body") == 20
        async with reader() as session:
            async with session.get(admin_url(runtime, "/api/signatures")) as resp:
                signatures = (await resp.json())["signatures"]
            async with session.get(admin_url(runtime, "/api/mismatches?route=/api/stats")) as resp:
                samples = (await resp.json())["mismatches"]
    assert [(s["route"], s["kind"], s["path"], s["count"]) for s in signatures] == [
        ("/api/stats", "body", "$.average", 20)]
    [diff] = samples[0]["sample"]["differences"]
    assert diff["primary"] == 6.5 and diff["shadow"].startswith("«str 6 number #")
    assert diff["types"] == ["float", "str"] and diff["note"] == NOT_STORED


async def test_a_planted_secret_never_reaches_the_state_file(servers, tmp_path):
    legacy, candidate = servers
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):  # differing tokens: a mismatch, so a sample is stored
                async with session.post(
                        proxy_url(runtime, f"/api/login?token={SECRET}"),
                        json={"username": "ann", "password": SECRET, "note": NOTE},
                        headers={"Authorization": f"Bearer {SECRET}",
                                 "Cookie": f"session={SECRET}"}) as resp:
                    assert resp.status == 200
        await settle(runtime, 3)
        await runtime.store.flush()
        async with reader() as session:
            async with session.get(admin_url(runtime, "/api/mismatches")) as resp:
                api = await resp.text()
    assert '"mismatches":[{' in api and "«str " in api
    stored = b"".join(p.read_bytes() for p in Path(tmp_path).glob("state.db*"))
    assert stored, "the state file exists"
    for text in (SECRET, NOTE, "panicky"):
        assert text.encode() not in stored, f"{text!r} is in the state file"
        assert text not in api, f"{text!r} is in the admin API"


def test_json_logs_are_one_object_per_line_and_hold_no_secret(tmp_path, unused_tcp_port_factory):
    """`shadow run --log-format json`, as an operator runs it."""
    port, admin = unused_tcp_port_factory(), unused_tcp_port_factory()
    config = tmp_path / "shadow.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin}"\n'
        f'[backends.legacy]\nurl = "http://127.0.0.1:{unused_tcp_port_factory()}"\n'
        f'[backends.candidate]\nurl = "http://127.0.0.1:{unused_tcp_port_factory()}"\n'
        f'[store]\npath = "{tmp_path / "state.db"}"\n')
    shadow = str(Path(sys.executable).with_name("shadow"))
    proc = subprocess.Popen([shadow, "run", "-c", str(config), "--log-format", "json"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "SHADOW_ADMIN_TOKEN": SECRET})
    try:
        import urllib.request

        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/x?token={SECRET}", data=SECRET.encode(),
            headers={"Authorization": f"Bearer {SECRET}"})
        try:  # both backends are down: 502, and the proxy logs nothing of the request
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 502
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [line for line in err.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    assert {"proxy started", "proxy stopped"} <= {e["event"] for e in events}
    assert SECRET not in err


async def test_admin_rejects_odd_ids_and_limits_with_400(servers, tmp_path):
    legacy, candidate = servers
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime:
        async with reader() as session:
            for path in ("/api/samples/%C2%B2", "/api/samples/99999999999999999999999",
                         "/api/mismatches?limit=%C2%B2", "/api/signatures?limit=0",
                         "/api/audit?limit=%C2%B2"):
                async with session.get(admin_url(runtime, path)) as resp:
                    assert resp.status == 400, path
