"""PostgreSQL capture in the usual production set-up: a migrator role owns the schema and
installs capture, the app writes through a role that may only read and write its tables."""

import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shadow.rows.capture import CaptureError
from shadow.rows.postgres import PostgresCapture

pytestmark = pytest.mark.postgres


def as_role(dsn: str, role: str, password: str) -> str:
    """`dsn` with another user and password."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{role}:{password}@{host}", parts.path, parts.query,
                       parts.fragment))


@pytest.fixture
async def roles(pg_dsn):
    """(owner DSN, app DSN): an owner role that creates the tables, a DML-only app role."""
    suffix = secrets.token_hex(4)
    owner, app, password = f"owner_{suffix}", f"app_{suffix}", secrets.token_hex(8)
    admin = await asyncpg.connect(pg_dsn)
    database = urlsplit(pg_dsn).path.lstrip("/")
    try:
        await admin.execute(f"CREATE ROLE {owner} LOGIN REPLICATION PASSWORD '{password}'")
        await admin.execute(f"CREATE ROLE {app} LOGIN PASSWORD '{password}'")
        await admin.execute(f'GRANT ALL ON DATABASE "{database}" TO {owner}')
        await admin.execute(f"GRANT ALL ON SCHEMA public TO {owner}")
        owner_dsn, app_dsn = as_role(pg_dsn, owner, password), as_role(pg_dsn, app, password)
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute("""
                CREATE TABLE items (id serial PRIMARY KEY, name text, qty integer);
                CREATE TABLE tags (item_id integer, tag text, PRIMARY KEY (item_id, tag));
                INSERT INTO items (name, qty) VALUES ('pen', 1);
            """)
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
            await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON items, tags TO {app}")
            await conn.execute(f"GRANT USAGE ON SEQUENCE items_id_seq TO {app}")
        finally:
            await conn.close()
        yield owner_dsn, app_dsn
    finally:
        await admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM {owner}')
        await admin.execute(f"DROP OWNED BY {owner}, {app} CASCADE")
        await admin.execute(f"DROP ROLE IF EXISTS {app}")
        await admin.execute(f"DROP ROLE IF EXISTS {owner}")
        await admin.close()


@pytest.mark.parametrize("method", ["triggers", "decoding"])
async def test_a_dml_only_app_role_keeps_writing_and_is_captured(roles, method):
    owner_dsn, app_dsn = roles
    async with PostgresCapture(owner_dsn, method=method) as capture:
        status = await capture.install()
        assert status.healthy and status.method == method and capture.installed == method
        app = await asyncpg.connect(app_dsn)
        try:
            if method == "triggers":
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await app.fetch('SELECT * FROM "_shadow_changes"')
            await app.execute("INSERT INTO items (name, qty) VALUES ('ink', 2)")
            await app.execute("UPDATE items SET qty = qty + 1")
            await app.execute("INSERT INTO tags VALUES (1, 'blue')")
            await app.execute("DELETE FROM tags")
            await app.execute("DELETE FROM items WHERE name = 'ink'")
        finally:
            await app.close()
        changes = await capture.drain()
        assert [(c.table, c.op, c.key) for c in changes] == [
            ("items", "insert", (2,)), ("items", "update", (1,)), ("items", "update", (2,)),
            ("tags", "insert", (1, "blue")), ("tags", "delete", (1, "blue")),
            ("items", "delete", (2,))]
        assert all(c.at for c in changes)
        assert changes[2].after == {"id": 2, "name": "ink", "qty": 3}
        assert all(c.before is None for c in changes[1:]) if method == "decoding" else True
        await capture.uninstall()


@pytest.mark.parametrize("method", ["triggers", "decoding"])
async def test_truncate_is_captured_as_one_table_change(roles, method):
    owner_dsn, _app_dsn = roles
    async with PostgresCapture(owner_dsn, method=method) as capture:
        await capture.install()
        owner = await asyncpg.connect(owner_dsn)
        try:
            await owner.execute("INSERT INTO tags VALUES (1, 'a'), (1, 'b')")
            await owner.execute("TRUNCATE tags")
        finally:
            await owner.close()
        changes = await capture.drain()
        assert [(c.table, c.op, c.key) for c in changes] == [
            ("tags", "insert", (1, "a")), ("tags", "insert", (1, "b")), ("tags", "truncate", ())]
        assert changes[2].before is None and changes[2].after is None and changes[2].at
        await capture.uninstall()


async def test_auto_falls_back_to_triggers_and_says_why(roles, pg_dsn):
    owner_dsn, app_dsn = roles
    admin = await asyncpg.connect(pg_dsn)
    owner = urlsplit(owner_dsn).netloc.partition(":")[0]
    try:
        await admin.execute(f"ALTER ROLE {owner} NOREPLICATION")
        async with PostgresCapture(owner_dsn) as capture:
            status = await capture.install()
            assert status.method == "triggers" and status.healthy
            assert "no REPLICATION" in capture.reason and "SECURITY DEFINER" in capture.reason
            await capture.uninstall()
        async with PostgresCapture(owner_dsn, method="decoding") as capture:
            with pytest.raises(CaptureError, match="no REPLICATION"):
                await capture.install()
    finally:
        await admin.close()
