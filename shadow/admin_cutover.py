"""The admin API of the cutover: status, mode changes, gate resets, the audit log.

    GET  /api/status        mode, roles, gate (reasons, compared exchanges still needed), rollback safety,
                            mirror lane, counts
    POST /api/mode          {"mode": "cutover", "force": false, "skip": false, "reason": "..."}
                            200 the new status | 400 bad request | 409 refused by the gate
                            ("skip": a forward move over a mode, e.g. shadow ->
                            candidate-only, is 400 unless asked for with a reason)
    POST /api/gate/reset    {"reason": "..."}  200 the new status | 400 no reason
    GET  /api/audit         audit log, newest first (?limit=1..1000, default 100)
    GET  /api/noise         what A/A calibration learnt, per route
    POST /api/noise         {"route": "GET /api/x", "path": "$.csrf", "state": "accepted"
                            | "rejected", "reason": "..."}  200 the place | 400 | 404

Mutating calls need the admin token (`Authorization: Bearer <token>`, or a browser session
opened with it plus its CSRF token); shadow.auth checks that before any handler here runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from shadow.compare.noise import META as NOISE_META
from shadow.compare.noise import NoisyPlace
from shadow.cutover import BadRequest, GateRefused, WritesInFlight

if TYPE_CHECKING:
    from shadow.app import Runtime

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), headers=headers,
                        content_type="application/json")


def _error(status: int, error: str, message: str, **more: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="shadow"'} if status == 401 else None
    return _json({"error": error, "message": message, **more}, status, headers)


async def _object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; raises BadRequest for anything else."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _field(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = data.get(name, default)
    if not isinstance(value, kind):
        raise BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


async def noise_decision(runtime: Runtime, route: str, path: str, state: str,
                         reason: str, who: str | None = None) -> NoisyPlace:
    """Accept or reject one learnt noise place, keep the model and audit-log it (`who`:
    the session's name; the admin token's by default). Raises BadRequest (no reason, an
    unknown state) and KeyError (no such learnt place)."""
    reason = reason.strip()
    if not reason:
        raise BadRequest("'reason' is required")
    try:
        place = runtime.noise.decide(route, path, state)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    await runtime.store.set_meta(NOISE_META, runtime.noise.saved())
    await runtime.store.add_audit(action=f"noise_{state}", from_mode=None, to_mode=None,
                                  forced=False, reason=reason, who=who or runtime.cutover.who,
                                  gate={"route": route, "path": path})
    return place


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Add the cutover routes to the admin application of `runtime`."""

    def guarded(handler: Handler) -> Handler:
        """Maps CutoverError to 400/409 (who may call was decided by shadow.auth)."""

        async def wrapper(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except GateRefused as exc:
                return _error(409, "gate_refused", "the cutover gate does not hold",
                              reasons=list(exc.result.reasons), gate=exc.result.to_dict())
            except WritesInFlight as exc:
                return _error(409, "writes_in_flight", str(exc))
            except BadRequest as exc:
                return _error(400, "bad_request", str(exc))

        return wrapper

    async def status(request: web.Request) -> web.Response:
        return _json(runtime.cutover.status())

    async def change_mode(request: web.Request) -> web.Response:
        data = await _object(request)
        target = _field(data, "mode", str, "")
        if not target:
            raise BadRequest("'mode' is required")
        change = await runtime.cutover.change(
            target, force=_field(data, "force", bool, False),
            reason=_field(data, "reason", str, ""), skip=_field(data, "skip", bool, False))
        done = {"from": change.from_mode, "to": change.to_mode, "forced": change.forced,
                "skipped": list(change.skipped)}
        return _json({**runtime.cutover.status(), "change": done})

    async def reset_gate(request: web.Request) -> web.Response:
        data = await _object(request)
        await runtime.cutover.reset(_field(data, "reason", str, ""))
        return _json(runtime.cutover.status())

    async def resync_rows(request: web.Request) -> web.Response:
        data = await _object(request)
        return _json(await runtime.cutover.resync_rows(_field(data, "reason", str, "")))

    async def audit(request: web.Request) -> web.Response:
        raw = request.query.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
            return _error(400, "bad_request", "limit must be 1..1000")
        return _json({"audit": await runtime.store.audit(int(raw))})

    async def noise(request: web.Request) -> web.Response:
        return _json({"routes": runtime.noise.listing(), "min_pairs": runtime.noise.min_pairs})

    async def decide_noise(request: web.Request) -> web.Response:
        data = await _object(request)
        route, path = _field(data, "route", str, ""), _field(data, "path", str, "")
        state, reason = _field(data, "state", str, ""), _field(data, "reason", str, "")
        try:
            place = await noise_decision(runtime, route, path, state, reason)
        except KeyError:
            return _error(404, "not_found", "no such learnt place on that route")
        return _json({"route": route, "path": place.path, "state": place.state,
                      "varied": place.varied})

    app.router.add_get("/api/noise", noise)
    app.router.add_post("/api/noise", guarded(decide_noise))
    app.router.add_get("/api/status", status)
    app.router.add_post("/api/mode", guarded(change_mode))
    app.router.add_post("/api/gate/reset", guarded(reset_gate))
    app.router.add_post("/api/rows/resync", guarded(resync_rows))
    app.router.add_get("/api/audit", audit)
