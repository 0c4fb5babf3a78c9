"""Planted markers through a real proxy with real mismatches: none of them may reach the
state file (its raw bytes), the admin API, the browser pages (real Chromium), /metrics
or the logs at debug level, while the differences stay explained.

Every marker is unique and sits where the issue found values leaking: JSON keys no
deny-list knew (`passcode`, `diagnosis`, `mobile`...), an e-mail address used as a key,
nested objects and arrays of objects, text/plain, HTML, single-quoted and broken JSON,
form bodies, binary and gzip bodies, request and reply headers (`X-Refresh-Token`,
`Location`), query parameters and path segments under configured templates and under none,
the candidate's log lines (names and values unquoted in free text) and a key that varies
by itself, so that A/A calibration learns it as noise.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from shadow.privacy import NOT_STORED
from tests.support import (
    VIEWER, VIEWER_TOKEN, admin_url, make_config, proxy_url, reader, running, settle,
)
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, log_in, need

MARKS = [f"Qzmk{i:02d}Vx" for i in range(40)]
EMAIL = "qzmk-jane.doe@example.com"
PHONE = "+44 7700 900123"
NOISY = "qzmk-noise"
EVERY = [*MARKS, EMAIL, PHONE, "7700 900123", "suicidal", NOISY, "Roe"]


def m(i: int, side: str = "") -> str:
    """Marker i; the candidate's copy differs (so the value is in a difference)."""
    return MARKS[i] + side


def build(side: str, log: Path | None = None) -> web.Application:
    """One build; the candidate (`side='c'`) differs at every marked place and writes
    what it did to `log`, values and all, as apps do."""
    served = [0]

    async def profile(request: web.Request) -> web.Response:
        await request.read()
        if log is not None:
            with log.open("a") as f:
                f.write(f"ERROR profile failed for {EMAIL} user={m(36)} by {m(37)} Roe: "
                        f"patient {m(38)} said I feel suicidal\n")
        return web.json_response({
            "user": {"first_name": m(0, side), "mobile": PHONE + side, "passcode": m(1, side),
                     "pwd": m(2, side), "otp": m(3, side), "cvv": m(4, side),
                     "authorization": m(5, side), "phone_number": PHONE},
            "records": [{"diagnosis": m(6, side), "medication": m(7, side), "count": 1},
                        {"diagnosis": m(8), "description": m(9, side), "count": 2 if side else 1}],
            EMAIL: {"message": f"{m(10)} I feel suicidal{side}", "seen": bool(side)},
            "score": 3.0 if side else "3.0",
        }, headers={"X-Refresh-Token": m(11), "Location": f"/callback?code={m(12)}&state={m(13)}"})

    async def page(request: web.Request) -> web.Response:
        html = f'<form><input name="password" value="{m(14, side)}"></form>'
        return web.Response(text=html, content_type="text/html")

    async def text(request: web.Request) -> web.Response:
        return web.Response(text=f"username={m(15)}&password={m(16, side)}")

    async def quoted(request: web.Request) -> web.Response:
        return web.Response(text=f"{{'token': '{m(17, side)}', 'ok': 1", content_type="application/json")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=m(18, side).encode() + b"\x00\xff", content_type="application/octet-stream")

    async def packed(request: web.Request) -> web.Response:
        body = gzip.compress(orjson.dumps({"note": m(19, side)}))
        return web.Response(body=body, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})

    async def form(request: web.Request) -> web.Response:
        return web.Response(text=f"sessionid={m(20, side)}&n=1",
                            content_type="application/x-www-form-urlencoded")

    async def by_path(request: web.Request) -> web.Response:
        return web.json_response({"who": request.match_info["who"] + side})

    async def sessions(request: web.Request) -> web.Response:
        served[0] += 1
        return web.json_response({"sessions": {f"{served[0]}{side}.{NOISY}@example.com": 1}})

    app = web.Application()
    app.router.add_post("/api/profile", profile)
    app.router.add_get("/api/page", page)
    app.router.add_post("/api/text", text)
    app.router.add_get("/api/quoted", quoted)
    app.router.add_get("/api/binary", binary)
    app.router.add_get("/api/packed", packed)
    app.router.add_get("/api/form", form)
    app.router.add_get("/api/users/{who}/records", by_path)
    app.router.add_get("/api/patients/{who}/diagnosis", by_path)
    app.router.add_get("/api/reset-password/{who}", by_path)
    app.router.add_get("/api/people/{who}/notes", by_path)
    app.router.add_get("/api/sessions", sessions)
    return app


REQUESTS = [
    ("POST", f"/api/profile?sessionid={m(21)}&code={m(22)}&sig={m(23)}",
     {"json": {"first_name": m(24), "nested": [{"medication": m(25)}], EMAIL: m(26)},
      "headers": {"X-Refresh-Token": m(27), "X-Session-Id": m(28),
                  "Authorization": f"Bearer {m(29)}", "Cookie": f"sid={m(30)}"}}),
    ("GET", "/api/page", {}),
    ("POST", "/api/text", {"data": f"username={m(31)}&password={m(32)}",
                           "headers": {"Content-Type": "text/plain"}}),
    ("GET", "/api/quoted", {}),
    ("GET", "/api/binary", {}),
    ("GET", "/api/packed", {}),
    ("GET", "/api/form", {}),
    ("GET", f"/api/users/{EMAIL}/records", {}),
    ("GET", f"/api/patients/{m(33)}/diagnosis", {}),
    ("GET", f"/api/reset-password/{m(34)}", {}),
    ("GET", f"/api/people/{m(35)}@example.com/notes", {}),
    ("GET", "/api/sessions", {}),
]
ROUTES = [{"template": t} for t in (
    "/api/profile", "/api/page", "/api/text", "/api/quoted", "/api/binary", "/api/packed",
    "/api/form", "/api/users/{id}/records", "/api/patients/{id}/diagnosis",
    "/api/reset-password/{token}", "/api/sessions")]
"""Configured, so each reply is found by its route below; `/api/people/...` is not, and
falls into `{other}`."""


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [mark for mark in EVERY if mark.lower() in low]


def browse_all(base: str, sample_ids: list[int], signatures: list[str],
               finding_ids: list[int]) -> dict[str, str]:
    """Every browser page, logged in with the viewer token, as Chromium renders it."""
    from urllib.parse import quote

    pages = {}
    with browser() as driver:
        log_in(driver, base, VIEWER_TOKEN)
        pages["/"] = driver.page_source
        for sig in signatures:
            driver.get(f"{base}/signatures?sig={quote(sig, safe='')}")
            pages[sig] = driver.page_source
        for sample_id in sample_ids:
            driver.get(f"{base}/samples/{sample_id}")
            pages[f"/samples/{sample_id}"] = driver.page_source
        for finding_id in finding_ids:
            driver.get(f"{base}/findings/{finding_id}")
            pages[f"/findings/{finding_id}"] = driver.page_source
        return pages


async def test_no_planted_marker_reaches_the_store_the_api_the_pages_metrics_or_logs(
        tmp_path, aiohttp_server, caplog):
    need(Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "chromium is not installed")
    caplog.set_level(logging.DEBUG, logger="shadow")
    log = tmp_path / "candidate.log"
    log.write_text("")
    legacy = await aiohttp_server(build(""))
    candidate = await aiohttp_server(build("c", log))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=ROUTES, store={"samples_per_signature": 20},
                         backends={"legacy": {"url": str(legacy.make_url(""))},
                                   "candidate": {"url": str(candidate.make_url("")),
                                                 "log_files": [str(log)]}},
                         noise={"share": 1.0, "methods": ["GET"]})
    async with running(config) as runtime:
        async with aiohttp.ClientSession(auto_decompress=False) as client:
            for method, path, kwargs in REQUESTS:
                async with client.request(method, proxy_url(runtime, path), **kwargs) as reply:
                    assert reply.status == 200, path
        await settle(runtime, len(REQUESTS))
        async with asyncio.timeout(10):  # the A/A probes run on the mirror lane
            while "GET /api/sessions" not in {r["route"] for r in runtime.noise.listing()}:
                await asyncio.sleep(0.02)
        await runtime.store.flush()
        api: dict[str, str] = {}
        async with reader() as client:
            for path in ("/api/mismatches?limit=500", "/api/signatures", "/api/status",
                         "/api/audit", "/api/reads", "/api/findings?limit=500", "/api/noise"):
                async with client.get(admin_url(runtime, path)) as reply:
                    api[path] = await reply.text()
            samples = orjson.loads(api["/api/mismatches?limit=500"])["mismatches"]
            for s in samples:
                async with client.get(admin_url(runtime, f"/api/samples/{s['id']}")) as reply:
                    api[f"/api/samples/{s['id']}"] = await reply.text()
            findings = [f["id"] for f in orjson.loads(api["/api/findings?limit=500"])["findings"]]
            for fid in findings:
                async with client.get(admin_url(runtime, f"/api/findings/{fid}")) as reply:
                    api[f"/api/findings/{fid}"] = await reply.text()
            async with client.get(admin_url(runtime, "/metrics")) as reply:
                api["/metrics"] = await reply.text()
        signatures = [s["signature"] for s in orjson.loads(api["/api/signatures"])["signatures"]]
        pages = await asyncio.to_thread(browse_all, admin_url(runtime),
                                        [s["id"] for s in samples], signatures, findings)
    routes_seen = {s["route"] for s in samples}
    assert routes_seen == {"/api/profile", "/api/page", "/api/text", "/api/quoted",
                           "/api/binary", "/api/packed", "/api/form",
                           "/api/users/{id}/records", "/api/patients/{id}/diagnosis",
                           "/api/reset-password/{token}", "/api/sessions",
                           "{other}"}, routes_seen
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.suffix != ".key")
    assert len(findings) >= len(routes_seen)
    assert stored and leaks(stored.decode("utf-8", "replace")) == []
    for name, text in {**api, **pages}.items():
        assert leaks(text) == [], name
    assert leaks(caplog.text) == []

    # ...and the differences still say what differs and where.
    by_route = {s["route"]: s["sample"] for s in samples}
    diffs = {d["path"]: d for d in by_route["/api/profile"]["differences"]}
    assert diffs["$.records[1].count"]["primary"] == 1 and diffs["$.records[1].count"]["shadow"] == 2
    score = diffs["$.score"]
    assert score["types"] == ["str", "float"] and score["note"] == NOT_STORED
    assert score["fingerprints"][0] == score["fingerprints"][1]  # same text, type changed
    first = diffs["$.user.first_name"]
    assert first["primary"].startswith("«str 8 #") and first["shadow"].startswith("«str 9 #")
    assert any(re.fullmatch(r"\$\['«key #[0-9a-f]{12}»'\]\.seen", p) for p in diffs)
    assert by_route["/api/page"]["differences"][0]["detail"].startswith("text differs at line 1")
    sample_pages = [text for name, text in pages.items() if name.startswith("/samples/")]
    assert any(NOT_STORED in text for text in sample_pages)
    logged = "\n".join(by_route["/api/profile"]["logs"]["candidate"])
    assert "ERROR «#" in logged and "failed for <email> user=«#" in logged
    noise = orjson.loads(api["/api/noise"])["routes"]
    places = [p["path"] for r in noise if r["route"] == "GET /api/sessions" for p in r["places"]]
    assert places and all(re.fullmatch(r"\$\.sessions\['«key #[0-9a-f]{12}»'\]", p)
                          for p in places), places
