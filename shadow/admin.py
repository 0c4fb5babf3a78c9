"""The admin listener's read-only JSON API and the Prometheus endpoint.

    GET /healthz                 liveness and the current mode
    GET /metrics                 Prometheus exposition
    GET /api/mismatches          samples (shadow.privacy), newest first (?route= ?signature= ?limit=)
    GET /api/signatures          mismatch signatures, most frequent first (?route= ?kind=)
    GET /api/samples/{id}        one sample
    GET /api/routes              configured templates and those learned from traffic
    GET /api/reads               the read log: who read which samples, when
    GET /  /findings/{id}        the findings browser (HTML, shadow.browser_findings)
    GET /noise  POST /noise      learnt noise to confirm (HTML, shadow.browser_noise)
    GET /signatures  /samples/{id}   signatures and samples (HTML, shadow.browser)
    /api/findings...             findings and their triage (shadow.admin_findings)

Mutating routes (mode changes, gate resets) live in shadow.admin_cutover. Who may call
what (tokens, browser sessions, CSRF) is decided in one place, shadow.auth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shadow import admin_cutover, admin_findings, auth, browser, browser_findings, browser_noise
from shadow.browser_html import page

if TYPE_CHECKING:
    from shadow.app import Runtime


def json_response(data, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
                        content_type="application/json")


def _limit(request: web.Request, default: int, most: int) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise web.HTTPBadRequest(text=f'{{"error": "limit must be 1..{most}"}}',
                                 content_type="application/json")
    return int(raw)


def build(runtime: Runtime) -> web.Application:
    """The admin application for one runtime."""
    cfg = runtime.config
    guard = auth.Auth(admin_token=runtime.admin_token, viewer_token=runtime.viewer_token,
                      admin_env=cfg.admin_token_env, viewer_env=cfg.viewer_token_env,
                      admin_name=cfg.admin_token_name, viewer_name=cfg.viewer_token_name,
                      session_seconds=cfg.session_minutes * 60, on_read=runtime.store.add_read)
    runtime.auth = guard
    app = web.Application(client_max_size=64 * 1024, middlewares=[guard.middleware()])

    async def healthz(request: web.Request) -> web.Response:
        roles = runtime.modes.current
        return json_response({"status": "ok", "mode": str(roles.mode),
                              "primary": roles.primary, "shadow": roles.shadow})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(runtime.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def mismatches(request: web.Request) -> web.Response:
        await runtime.store.flush()
        rows = await runtime.store.samples(
            signature=request.query.get("signature"), route=request.query.get("route"),
            limit=_limit(request, 50, 500))
        return json_response({"mismatches": rows})

    async def signatures(request: web.Request) -> web.Response:
        await runtime.store.flush()
        rows = await runtime.store.signatures(
            route=request.query.get("route"), kind=request.query.get("kind"),
            limit=_limit(request, 200, 2000))
        return json_response({"signatures": rows})

    async def sample(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            return json_response({"error": "sample ids are integers"}, 400)
        row = await runtime.store.sample(int(raw))
        if row is None:
            return json_response({"error": "no such sample"}, 404)
        return json_response(row)

    async def routes(request: web.Request) -> web.Response:
        table = runtime.routes
        return json_response({
            "configured": table.templates if table else [],
            "learned": [{"template": r.template, "hits": r.hits}
                        for r in (table.learned() if table else [])],
            "max_learned": runtime.config.learn_routes.max_templates,
        })

    async def reads(request: web.Request) -> web.Response:
        return json_response({"reads": await runtime.store.reads(_limit(request, 100, 1000))})

    def render(title: str, body: str) -> str:
        roles = runtime.modes.current
        return page(title, {"mode": str(roles.mode), "primary": cfg.label(roles.primary)}, body)

    auth.add_routes(app, guard, render)
    app.router.add_get("/api/reads", reads)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/mismatches", mismatches)
    app.router.add_get("/api/signatures", signatures)
    app.router.add_get("/api/samples/{id}", sample)
    app.router.add_get("/api/routes", routes)
    admin_cutover.add_routes(app, runtime)
    admin_findings.add_routes(app, runtime)
    browser.add_routes(app, runtime)
    browser_findings.add_routes(app, runtime)
    browser_noise.add_routes(app, runtime)
    return app
