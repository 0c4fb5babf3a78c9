"""Findings through a real proxy: two small builds that differ on purpose, real sockets,
a real state file. Covers the API (filters, paging, sample counts), triage with the admin
token and its audit entry, the gate's answer naming counted and uncounted findings,
candidate versions (a reply header, or set by hand) with a fixed finding reopening under a
new version, the CLI's exit codes and --json, and the browser's triage form (an admin
session and its CSRF token, never a viewer's, never from another site)."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from shadow.cli import main
from tests.support import (
    VIEWER_TOKEN, admin_url, browser, login, make_config, proxy_url, running, settle,
)

TOKEN = "findings-test-token"
VERSION = {"candidate": "1.0"}


def build(candidate: bool) -> web.Application:
    """The app as one build serves it. The candidate renders a boolean as `true`, a
    timestamp the PostgreSQL way, answers 500 on POST /api/moods, and names its version
    in X-App-Version when VERSION['candidate'] is set."""

    @web.middleware
    async def versioned(request: web.Request, handler) -> web.StreamResponse:
        reply = await handler(request)
        if candidate and VERSION["candidate"]:
            reply.headers["X-App-Version"] = VERSION["candidate"]
        return reply

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "version": "2" if candidate else "1"})

    async def item(request: web.Request) -> web.Response:
        return web.json_response({
            "id": int(request.match_info["id"]), "calm": True if candidate else 1,
            "at": "2026-02-04T15:47:20+00:00" if candidate else "2026-02-04 15:47:20"})

    async def mood(request: web.Request) -> web.Response:
        if candidate:
            return web.json_response({"error": "internal"}, status=500)
        return web.json_response({"id": 7, "points": 10}, status=201)

    app = web.Application(middlewares=[versioned])
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/items/{id}", item)
    app.router.add_post("/api/moods", mood)
    return app


@pytest.fixture
async def proxy(tmp_path, aiohttp_server, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    VERSION["candidate"] = "1.0"
    legacy = await aiohttp_server(build(False))
    candidate = await aiohttp_server(build(True))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": "/api/items/{id}"}, {"template": "/api/health"},
                                 {"template": "/api/moods"}],
                         gate={"min_compared": 5, "max_mismatch_rate": 0.5},
                         findings={"version_header": "X-App-Version"})
    async with running(config) as runtime:
        yield runtime


async def traffic(runtime, client, n: int = 6) -> None:
    start = runtime.verifier.concluded
    for i in range(n):
        for method, path in (("GET", "/api/health"), ("GET", f"/api/items/{i}"),
                             ("POST", "/api/moods")):
            async with client.request(method, proxy_url(runtime, path), json={}) as reply:
                await reply.read()
    await settle(runtime, start + 3 * n)


async def api(client, runtime, path: str, method: str = "GET", body=None, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.request(method, admin_url(runtime, path), json=body,
                              headers=headers) as reply:
        return reply.status, orjson.loads(await reply.read())


async def cli(runtime, *args: str, token: str | None = TOKEN):
    env = {"SHADOW_ADMIN_URL": admin_url(runtime), "SHADOW_ADMIN_TOKEN": token or ""}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def by_title(client, runtime) -> dict[str, dict]:
    status, answer = await api(client, runtime, "/api/findings?limit=500")
    assert status == 200
    return {f["key"]: f for f in answer["findings"]}


async def test_findings_api_groups_filters_pages_and_counts_samples(proxy):
    runtime = proxy
    async with aiohttp.ClientSession() as client:
        await traffic(runtime, client)
        found = await by_title(client, runtime)
        assert set(found) == {
            "GET /api/health value $.version", "GET /api/items/{id} type number→boolean",
            "GET /api/items/{id} format 0000-00-00 00:00:00→0000-00-00T00:00:00+00:00",
            "POST /api/moods status 201→500"}
        status_finding = found["POST /api/moods status 201→500"]
        assert status_finding["count"] == 6 and status_finding["signature_count"] == 4
        for f in found.values():
            _, detail = await api(client, runtime, f"/api/findings/{f['id']}")
            assert f["samples"] == len(detail["samples_kept"]) > 0, f["key"]
            assert f["versions"][0]["version"] == "1.0"
        _, kept = await api(client, runtime, "/api/mismatches?limit=500")
        exchanges = [m["exchange_id"] for m in kept["mismatches"]]
        assert len(exchanges) == len(set(exchanges)), "one exchange kept twice"
        _, moods = await api(client, runtime, f"/api/findings/{status_finding['id']}")
        dependents = {s["signature"] for s in moods["signatures"] if s["dependent"]}
        assert dependents == {"POST /api/moods body $.error", "POST /api/moods body $.id",
                              "POST /api/moods body $.points"}
        _, page1 = await api(client, runtime, "/api/findings?limit=2&sort=id&order=asc")
        _, page2 = await api(client, runtime, "/api/findings?limit=2&offset=2&sort=id&order=asc")
        assert page1["total"] == page2["total"] == 4
        ids = [f["id"] for f in page1["findings"] + page2["findings"]]
        assert ids == sorted(ids) and len(set(ids)) == 4
        _, items = await api(client, runtime, "/api/findings?route=/api/items/{id}&kind=type")
        assert [f["key"] for f in items["findings"]] == ["GET /api/items/{id} type number→boolean"]
        _, search = await api(client, runtime, "/api/findings?q=calm")
        assert [f["kind"] for f in search["findings"]] == ["type"], "search reads signature paths"
        _, posts = await api(client, runtime, "/api/findings?method=POST&version=1.0")
        assert [f["kind"] for f in posts["findings"]] == ["status"]
        status, bad = await api(client, runtime, "/api/findings?kind=nonsense&limit=0")
        assert status == 400 and "unknown kind" in bad["message"] and "limit" in bad["message"]


async def test_triage_needs_the_token_and_a_reason_and_the_gate_honours_it(proxy):
    runtime = proxy
    async with aiohttp.ClientSession() as client:
        await traffic(runtime, client)
        found = await by_title(client, runtime)
        health = found["GET /api/health value $.version"]
        path = f"/api/findings/{health['id']}/state"
        assert (await api(client, runtime, path, "POST", {"state": "expected", "reason": "x"},
                          token="wrong"))[0] == 401
        assert (await api(client, runtime, path, "POST", {"state": "expected"}))[0] == 400
        assert (await api(client, runtime, "/api/findings/999/state", "POST",
                          {"state": "expected", "reason": "x"}))[0] == 404
        _, gate = await api(client, runtime, "/api/status")
        assert any(r.startswith("GET /api/health") for r in gate["gate"]["reasons"])
        status, changed = await api(client, runtime, path, "POST",
                                    {"state": "expected", "reason": "version field added"})
        assert status == 200 and changed["state"] == "expected"
        _, gate = await api(client, runtime, "/api/status")
        reasons, named = gate["gate"]["reasons"], gate["gate"]["findings"]
        assert not any(r.startswith("GET /api/health") for r in reasons), reasons
        uncounted = {f["finding"]: f["why"] for f in named["uncounted"]}
        assert uncounted == {health["key"]: "expected: version field added"}
        assert "POST /api/moods status 201→500" in {f["finding"] for f in named["counted"]}
        _, audit = await api(client, runtime, "/api/audit")
        entry = audit["audit"][0]
        assert (entry["action"], entry["from_mode"], entry["to_mode"], entry["reason"]) == \
            ("finding_state", "new", "expected", "version field added")
        assert health["key"] in entry["subject"]
        noise = found["GET /api/items/{id} type number→boolean"]
        _, marked = await api(client, runtime, f"/api/findings/{noise['id']}/state", "POST",
                              {"state": "noise", "reason": "rendering only"})
        assert marked["rule"] == ('[[routes]]\ntemplate = "/api/items/{id}"\n'
                                  'ignore_paths = ["$.calm"]')


async def test_a_fixed_finding_reopens_when_seen_under_a_new_candidate_version(proxy):
    runtime = proxy
    async with aiohttp.ClientSession() as client:
        await traffic(runtime, client, 2)
        health = (await by_title(client, runtime))["GET /api/health value $.version"]
        path = f"/api/findings/{health['id']}/state"
        _, fixed = await api(client, runtime, path, "POST",
                             {"state": "fixed", "reason": "fixed in 1.1"})
        assert (fixed["state"], fixed["state_version"]) == ("fixed", "1.0")
        await traffic(runtime, client, 2)
        _, still = await api(client, runtime, f"/api/findings/{health['id']}")
        assert still["state"] == "fixed", "the old build still runs: not reopened"
        VERSION["candidate"] = "1.1"
        await traffic(runtime, client, 2)
        await runtime.findings.save()
        _, again = await api(client, runtime, f"/api/findings/{health['id']}")
        assert again["state"] == "new" and "1.1" in again["reason"]
        assert {v["version"]: v["count"] for v in again["versions"]} == {"1.0": 4, "1.1": 2}
        _, audit = await api(client, runtime, "/api/audit")
        assert audit["audit"][0]["action"] == "finding_reopened"


async def test_the_version_set_by_hand_is_used_when_replies_carry_none(proxy):
    runtime = proxy
    VERSION["candidate"] = ""
    async with aiohttp.ClientSession() as client:
        assert (await api(client, runtime, "/api/candidate-version", "POST",
                          {"version": "bad version!"}))[0] == 400
        result = await cli(runtime, "candidate-version", "2.0-rc1", "--reason", "deployed")
        assert result.exit_code == 0 and "2.0-rc1" in result.output
        await traffic(runtime, client, 2)
        found = await by_title(client, runtime)
        assert [v["version"] for v in found["POST /api/moods status 201→500"]["versions"]] == \
            ["2.0-rc1"]


async def test_cli_lists_triages_and_exits_with_meaningful_codes(proxy):
    runtime = proxy
    async with aiohttp.ClientSession() as client:
        await traffic(runtime, client, 3)
    listed = await cli(runtime, "findings", "--json", "--state", "new")
    assert listed.exit_code == 0, listed.output
    answer = orjson.loads(listed.output)
    assert answer["total"] == 4
    moods = next(f for f in answer["findings"] if f["kind"] == "status")
    text = await cli(runtime, "findings", "--route", "/api/moods")
    assert text.exit_code == 0 and "status 201→500" in text.output and "1 finding(s)" in text.output
    assert (await cli(runtime, "findings", "--check")).exit_code == 1
    assert (await cli(runtime, "triage", str(moods["id"]), "--state", "expected",
                      "--reason", "x", token=None)).exit_code == 2
    assert (await cli(runtime, "triage", "999", "--state", "expected",
                      "--reason", "x")).exit_code == 2
    done = await cli(runtime, "triage", str(moods["id"]), "--state", "acknowledged",
                     "--reason", "being fixed")
    assert done.exit_code == 0 and "acknowledged (being fixed)" in done.output
    assert (await cli(runtime, "findings", "--state", "acknowledged", "--check")).exit_code == 1
    for f in answer["findings"]:
        if f["id"] != moods["id"]:
            await cli(runtime, "triage", str(f["id"]), "--state", "expected", "--reason", "ok")
    assert (await cli(runtime, "findings", "--state", "expected", "--check")).exit_code == 0
    gate = await cli(runtime, "gate")
    assert "counted: #" in gate.output and "not counted: #" in gate.output


async def test_the_triage_form_needs_an_admin_session_and_refuses_another_site(proxy):
    runtime = proxy
    async with browser() as client:
        await traffic(runtime, client, 1)
        fid = (await by_title(client, runtime))["POST /api/moods status 201→500"]["id"]
        url = admin_url(runtime, f"/findings/{fid}/state")
        form = {"state": "acknowledged", "reason": "on it"}
        await login(client, runtime, VIEWER_TOKEN)
        async with client.get(admin_url(runtime, f"/findings/{fid}")) as reply:
            page = await reply.text()
            assert 'id="triage-readonly"' in page and 'id="triage"' not in page
        viewer_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        async with client.post(url, data={**form, "csrf": viewer_csrf},
                               allow_redirects=False) as reply:
            assert reply.status == 403 and "viewer" in await reply.text()
        client.cookie_jar.clear()
        csrf = await login(client, runtime, TOKEN)
        async with client.get(admin_url(runtime, f"/findings/{fid}")) as reply:
            page = await reply.text()
            assert 'id="triage"' in page and f'name="csrf" value="{csrf}"' in page
            assert TOKEN not in page
        async with client.post(url, data=form, allow_redirects=False) as reply:
            assert reply.status == 403 and "CSRF" in await reply.text()
        async with client.post(url, data={**form, "csrf": viewer_csrf},
                               allow_redirects=False) as reply:
            assert reply.status == 403 and "CSRF" in await reply.text()
        form["csrf"] = csrf
        async with client.post(url, data=form, headers={"Sec-Fetch-Site": "cross-site"},
                               allow_redirects=False) as reply:
            assert reply.status == 403 and "another site" in await reply.text()
        async with client.post(url, data=form, headers={"Origin": "http://evil.example"},
                               allow_redirects=False) as reply:
            assert reply.status == 403
        async with client.post(url, data={**form, "state": "noise"},
                               allow_redirects=False) as reply:
            assert reply.status == 400 and "mark it expected" in await reply.text()
        async with client.post(url, data=form, allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"] == f"/findings/{fid}"
        _, found = await api(client, runtime, f"/api/findings/{fid}")
        assert (found["state"], found["reason"]) == ("acknowledged", "on it")
        _, audit = await api(client, runtime, "/api/audit")
        assert (audit["audit"][0]["action"], audit["audit"][0]["who"]) == ("finding_state", "admin")
