import asyncpg


async def test_fresh_database_is_reachable_and_empty(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
        assert tables == 0
        assert await conn.fetchval("select 1 + 1") == 2
    finally:
        await conn.close()
