"""Fixtures for the demo app pair: seeded databases, the AI coach stand-in and both
builds on real servers."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from shadow.demo.candidate import make_candidate_app
from shadow.demo.coach import make_coach_app
from shadow.demo.legacy import make_legacy_app
from shadow.demo.seed import seed

COACH_DELAY = (0.02, 0.05)
"""The coach's wait in tests: short, the slow route's slowness is tested on its own."""


@pytest.fixture
async def seeded(tmp_path, pg_dsn):
    """(SQLite path, PostgreSQL DSN), both holding the same starting data."""
    db_path = tmp_path / "legacy.sqlite3"
    await seed(db_path, pg_dsn)
    return db_path, pg_dsn


@pytest.fixture
async def coach(aiohttp_server):
    """The AI coach stand-in on a real server, answering after COACH_DELAY."""
    return await aiohttp_server(make_coach_app(COACH_DELAY, seed=1))


@pytest.fixture
async def builds(seeded, coach, aiohttp_server):
    """Start both builds on 127.0.0.1, port 0: `await builds(bugs=...)` returns
    (legacy server, candidate server), both asking `coach`. The fixture closes them
    after the test."""

    async def start(bugs: str | None = None, **kwargs) -> tuple[TestServer, TestServer]:
        db_path, dsn = seeded
        kwargs.setdefault("coach_url", str(coach.make_url("")))
        legacy = await aiohttp_server(make_legacy_app(db_path, **kwargs))
        candidate = await aiohttp_server(make_candidate_app(dsn, bugs, **kwargs))
        return legacy, candidate

    return start
