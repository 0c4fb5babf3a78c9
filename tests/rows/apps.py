"""What the small test apps of the row tests share: a PostgreSQL pool opened with the app."""

from __future__ import annotations

import asyncpg
from aiohttp import web

POOL = web.AppKey("pool", asyncpg.Pool)


def with_pool(app: web.Application, dsn: str) -> web.Application:
    """`app` with `app[POOL]`, a small asyncpg pool on `dsn`, open while the app runs."""

    async def connect(app: web.Application):
        app[POOL] = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(connect)
    return app
