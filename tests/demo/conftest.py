"""Fixtures for the demo app pair: seeded databases and both builds on real servers."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from shadow.demo.candidate import make_candidate_app
from shadow.demo.legacy import make_legacy_app
from shadow.demo.seed import seed


@pytest.fixture
async def seeded(tmp_path, pg_dsn):
    """(SQLite path, PostgreSQL DSN), both holding the same starting data."""
    db_path = tmp_path / "legacy.sqlite3"
    await seed(db_path, pg_dsn)
    return db_path, pg_dsn


@pytest.fixture
async def builds(seeded, aiohttp_server):
    """Start both builds on 127.0.0.1, port 0: `await builds(bugs=...)` returns
    (legacy server, candidate server). The fixture closes them after the test."""

    async def start(bugs: str | None = None, **kwargs) -> tuple[TestServer, TestServer]:
        db_path, dsn = seeded
        legacy = await aiohttp_server(make_legacy_app(db_path, **kwargs))
        candidate = await aiohttp_server(make_candidate_app(dsn, bugs, **kwargs))
        return legacy, candidate

    return start
