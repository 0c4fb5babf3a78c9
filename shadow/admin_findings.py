"""The admin API of findings.

    GET  /api/findings               findings (?q= ?method= ?route= ?kind= ?table= ?state=
                                     ?version= ?sort=count|last_seen|first_seen|id|route|state
                                     ?order=desc|asc ?limit=1..500 ?offset=)
                                     -> {"findings": [...], "total": n, "limit", "offset"}
    GET  /api/findings/{id}          one finding: signatures, cascade links, versions, samples
    POST /api/findings/{id}/state    {"state": "expected", "reason": "..."}  (admin token)
    GET  /api/candidate-version      the version set by hand and the configured header
    POST /api/candidate-version      {"version": "1.4.2", "reason": "..."}   (admin token)

`samples` of a finding counts exactly the samples its page lists. State changes and
version changes need the admin token (checked by shadow.auth before any handler here
runs) and are audit-logged under the token's name.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from shadow.auth import identity_of
from shadow.findings import queries
from shadow.findings.recorder import NotFound
from shadow.findings.triage import TriageError

if TYPE_CHECKING:
    from shadow.app import Runtime

MAX_PARAM = 2048


def _json(data, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
                        content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": {400: "bad_request", 404: "not_found"}.get(status, "error"),
                  "message": message}, status)


def parse_query(params) -> tuple[queries.Query, list[str]]:
    """A findings Query from URL parameters, and every problem with them."""
    problems = [f"{name}: longer than {MAX_PARAM} characters"
                for name, value in params.items() if len(value) > MAX_PARAM]

    def number(name: str, default: int) -> int:
        raw = params.get(name, "")
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
            problems.append(f"{name} must be a whole number")
            return default
        return int(raw)

    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        problems.append("order must be asc or desc")
    query = queries.Query(
        q=params.get("q", "")[:MAX_PARAM], method=params.get("method", "")[:MAX_PARAM],
        route=params.get("route", "")[:MAX_PARAM], kind=params.get("kind", "")[:MAX_PARAM],
        table=params.get("table", "")[:MAX_PARAM], state=params.get("state", "")[:MAX_PARAM],
        version=params.get("version", "")[:MAX_PARAM], sort=params.get("sort", "count"),
        descending=order != "asc", limit=number("limit", 50), offset=number("offset", 0))
    return query, problems + query.problems()


def finding_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 16 else None


async def _object(request: web.Request) -> dict | None:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Add the findings API to the admin application of `runtime`."""

    async def listing(request: web.Request) -> web.Response:
        query, problems = parse_query(request.query)
        if problems:
            return _error(400, "; ".join(problems))
        await runtime.store.flush()
        rows, total = await queries.listing(runtime.store, query, time.time())
        return _json({"findings": rows, "total": total, "limit": query.limit,
                      "offset": query.offset})

    async def one(request: web.Request) -> web.Response:
        fid = finding_id(request.match_info["id"])
        if fid is None:
            return _error(400, "finding ids are integers")
        await runtime.store.flush()
        found = await queries.one(runtime.store, fid, time.time())
        if found is None:
            return _error(404, "no such finding")
        found["samples_kept"] = [
            {"id": s["id"], "exchange_id": s["exchange_id"], "created_at": s["created_at"],
             "candidate_version": s["candidate_version"]}
            for s in await queries.samples(runtime.store, fid)]
        return _json(found)

    async def set_state(request: web.Request) -> web.Response:
        fid = finding_id(request.match_info["id"])
        data = await _object(request)
        if fid is None or data is None:
            return _error(400, "POST a JSON object {\"state\": ..., \"reason\": ...} to "
                               "/api/findings/{integer id}/state")
        state, reason = data.get("state"), data.get("reason", "")
        if not isinstance(state, str) or not isinstance(reason, str):
            return _error(400, "'state' and 'reason' must be strings")
        try:
            found = await runtime.findings.triage(fid, state, reason,
                                                  identity_of(request).name)
        except NotFound as exc:
            return _error(404, str(exc))
        except TriageError as exc:
            return _error(400, str(exc))
        return _json(found)

    async def get_version(request: web.Request) -> web.Response:
        return _json({"version": runtime.findings.version,
                      "header": runtime.config.findings.version_header})

    async def set_version(request: web.Request) -> web.Response:
        data = await _object(request)
        if data is None or not isinstance(data.get("version"), str) \
                or not isinstance(data.get("reason", ""), str):
            return _error(400, "POST a JSON object {\"version\": \"1.4.2\", \"reason\": ...}")
        try:
            version = await runtime.findings.set_version(
                data["version"], data.get("reason", ""), identity_of(request).name)
        except TriageError as exc:
            return _error(400, str(exc))
        return _json({"version": version, "header": runtime.config.findings.version_header})

    app.router.add_get("/api/findings", listing)
    app.router.add_get("/api/findings/{id}", one)
    app.router.add_post("/api/findings/{id}/state", set_state)
    app.router.add_get("/api/candidate-version", get_version)
    app.router.add_post("/api/candidate-version", set_version)
