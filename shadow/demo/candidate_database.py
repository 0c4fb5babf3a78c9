"""The candidate build's one PostgreSQL database: its connection pool and starting data.

The app keeps one asyncpg pool for its lifetime, every connection in UTC and with jsonb
read and written as JSON. It creates the schema only when it is missing, under an
advisory lock, so in production it runs as a role with DML rights only while another role
owns the tables (see `shadow.demo.roles`). The legacy build's achievements file is a table
of this one database. `write_seed` puts the starting data in, ids and sequences included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from .schema import POSTGRES_SCHEMA, TABLES
from .seed import COLUMNS, SeedData


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", decoder=orjson.loads,
                              encoder=lambda value: orjson.dumps(value).decode())


@asynccontextmanager
async def open_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `dsn`, the schema created first if it is missing; closed on exit."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, init=_init_connection,
                                     server_settings={"timezone": "UTC"})
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('shadow.demo'))")
            if await conn.fetchval("SELECT to_regclass('achievements') IS NULL"):
                await conn.execute(POSTGRES_SCHEMA)
        yield pool
    finally:
        await pool.close()


async def write_seed(dsn: str, data: SeedData) -> None:
    """Drop the demo tables of the database at `dsn`, recreate them, insert `data`, and
    set every id sequence past the copied ids."""
    conn = await asyncpg.connect(dsn, server_settings={"timezone": "UTC"})
    try:
        await _init_connection(conn)
        async with conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE")
            await conn.execute(POSTGRES_SCHEMA)
            for table, rows in data.rows.items():
                columns = COLUMNS[table]
                marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
                await conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                if columns[0] == "id":
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))")
    finally:
        await conn.close()
