"""Shared fixtures: one PostgreSQL server for the whole session, a fresh database per test."""

from __future__ import annotations

import pytest

from shadow.pgserver import PostgresServer, PostgresUnavailable
from tests.support import VIEWER_TOKEN


@pytest.fixture(autouse=True)
def viewer_token(monkeypatch):
    """Every proxy a test starts has a viewer token (reads are refused without one)."""
    monkeypatch.setenv("SHADOW_VIEWER_TOKEN", VIEWER_TOKEN)
    return VIEWER_TOKEN


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server: SHADOW_POSTGRES_DSN if set, else an embedded one."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def pg_dsn(pg_server):
    """The DSN of a new, empty database on the session's server; dropped afterwards, and
    its replication slots (change capture by logical decoding) at once."""
    dsn = await pg_server.create_database()
    yield dsn
    await pg_server.drop_slots(dsn)
    if pg_server.external:
        await pg_server.drop_databases()
