"""How both builds answer: JSON bodies, JSON errors, and the `X-Backend` header.

An error reply is `{"error": message, "error_id": id}`, the id random (twelve hex
digits) so that a user can quote it to support; it is logged with 500s.

Bodies are serialised with orjson. Values the candidate forgot to convert reach the
serialiser as they came from the driver, which is how the rendering bugs show: a
`datetime` becomes `"2026-02-04T15:47:20.123456+00:00"`, a `bool` becomes `true`, a
`Decimal` becomes its string (`"6.50"`).
"""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from .validate import ApiError

BACKEND_HEADER = "X-Backend"
BACKEND = web.AppKey("backend", str)

log = logging.getLogger("shadow.demo")


def _fallback(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_reply(data: Any, status: int = 200) -> web.Response:
    """A JSON response with `data` as its body."""
    return web.Response(
        body=orjson.dumps(data, default=_fallback), status=status,
        content_type="application/json",
    )


def error_reply(status: int, message: str) -> web.Response:
    """`{"error": message, "error_id": <random>}` with `status`."""
    return json_reply({"error": message, "error_id": secrets.token_hex(6)}, status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Client errors become JSON errors; anything unexpected a logged 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_reply(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_reply(exc.status, exc.reason.lower())
    except Exception:
        reply = error_reply(500, "internal error")
        log.exception("%s: %s %s failed (error id in the reply: %s)", request.app[BACKEND],
                      request.method, request.path, orjson.loads(reply.body)["error_id"])
        return reply


async def tag_backend(request: web.Request, response: web.StreamResponse) -> None:
    """Stamp every response, errors included, with the build that served it."""
    response.headers[BACKEND_HEADER] = request.app[BACKEND]
