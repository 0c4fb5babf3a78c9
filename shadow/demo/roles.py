"""The candidate's least-privilege role: DML on tables another role owns.

In production the candidate build runs as a role that may read and write the app's
tables but not change the schema; the schema belongs to an owner role, the one the
migration and `shadow rows install` use. `app_role(owner_dsn)` creates such a role for
the database of `owner_dsn` and yields its DSN, then drops it:

    LOGIN, no superuser, no CREATE on the schema;
    SELECT, INSERT, UPDATE, DELETE on every table of `public`, USAGE on its sequences;
    with `future=True` (the default) the same on tables and sequences the owner creates
    later (ALTER DEFAULT PRIVILEGES), as a DBA sets up an app role that outlives the
    next migration.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

_DML = "SELECT, INSERT, UPDATE, DELETE"


def _as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _grants(role: str, owner: str, future: bool) -> list[str]:
    sql = [f"GRANT USAGE ON SCHEMA public TO {role}",
           f"GRANT {_DML} ON ALL TABLES IN SCHEMA public TO {role}",
           f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"]
    if future:
        sql += [f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
                f"GRANT {_DML} ON TABLES TO {role}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
                f"GRANT USAGE, SELECT ON SEQUENCES TO {role}"]
    return sql


@asynccontextmanager
async def app_role(owner_dsn: str, *, future: bool = True) -> AsyncIterator[str]:
    """A DML-only login role on the database of `owner_dsn` (see the module docstring);
    yields its DSN; the role and its grants are dropped on exit."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        database, owner = await conn.fetchrow("SELECT current_database(), current_user")
        role = f"{database}_app"[:63]
        password = secrets.token_urlsafe(18)
        quoted = f'"{role}"'
        await conn.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB "
                           f"NOCREATEROLE PASSWORD '{password}'")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}')
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for sql in _grants(quoted, f'"{owner}"', future):
            await conn.execute(sql)
    finally:
        await conn.close()
    try:
        yield _as_role(owner_dsn, role, password)
    finally:
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(f"DROP OWNED BY {quoted}")
            await conn.execute(f"DROP ROLE IF EXISTS {quoted}")
        finally:
            await conn.close()
