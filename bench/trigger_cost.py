#!/usr/bin/env python3
"""What change capture costs the application: write throughput with and without the
capture triggers, on SQLite and on PostgreSQL, and the latency of one `drain()`.

    python bench/trigger_cost.py [--rows 5000] [--drains 300]

SQLite: a WAL-mode file in a temporary directory, written through the stdlib driver
(as the legacy app would). PostgreSQL: SHADOW_POSTGRES_DSN, else an embedded server;
written through asyncpg. Each write case runs once with one transaction per row (what a
web request does) and once with all rows in one transaction (the trigger's own CPU cost,
without commit overhead). The change log is not drained during a write case. Figures on
a shared machine drift: compare the columns of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from shadow.pgserver import PostgresServer
from shadow.rows.postgres import PostgresCapture
from shadow.rows.sqlite import SqliteCapture

TABLE = "items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, updated_at TEXT)"
PG_TABLE = ("items (id serial PRIMARY KEY, name text, qty integer, price numeric(10, 2), "
            "updated_at timestamptz)")


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>9,.0f}/s"


def sqlite_writes(path: Path, rows: int, per_row: bool) -> tuple[float, float]:
    """Seconds for `rows` inserts, then `rows` updates, through the app's own driver;
    one transaction per row, or one for all rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DELETE FROM items")
        insert = "INSERT INTO items (name, qty, price, updated_at) VALUES (?, ?, ?, ?)"
        update = "UPDATE items SET qty = qty + 1, updated_at = ? WHERE id = ?"

        def timed(statement: str, params: list[tuple]) -> float:
            start = time.perf_counter()
            if not per_row:
                conn.execute("BEGIN")
            for row in params:
                conn.execute(statement, row)
            if not per_row:
                conn.execute("COMMIT")
            return time.perf_counter() - start

        inserted = timed(insert, [(f"item {i}", i, i * 1.25, "2026-02-04 15:47:20")
                                  for i in range(rows)])
        ids = [("2026-02-04 15:47:21", r[0]) for r in conn.execute("SELECT id FROM items")]
        return inserted, timed(update, ids)
    finally:
        conn.close()


async def pg_writes(dsn: str, rows: int, per_row: bool) -> tuple[float, float]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE items RESTART IDENTITY")
        insert = "INSERT INTO items (name, qty, price, updated_at) VALUES ($1, $2, $3, now())"
        update = "UPDATE items SET qty = qty + 1, updated_at = now() WHERE id = $1"
        args = [(f"item {i}", i, i * 1.25) for i in range(rows)]
        start = time.perf_counter()
        if per_row:
            for row in args:
                await conn.execute(insert, *row)
        else:
            async with conn.transaction():
                await conn.executemany(insert, args)
        inserted = time.perf_counter() - start
        ids = [(r[0],) for r in await conn.fetch("SELECT id FROM items ORDER BY id")]
        start = time.perf_counter()
        if per_row:
            for row in ids:
                await conn.execute(update, *row)
        else:
            async with conn.transaction():
                await conn.executemany(update, ids)
        return inserted, time.perf_counter() - start
    finally:
        await conn.close()


async def drain_latency(capture, write, drains: int, per_request: int) -> list[float]:
    """drain() times in ms after each simulated request writing `per_request` rows."""
    await capture.drain()
    times = []
    for _ in range(drains):
        await write(per_request)
        start = time.perf_counter()
        changes = await capture.drain()
        times.append((time.perf_counter() - start) * 1000)
        assert len(changes) == per_request
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.3f} ms, p95 {p95:.3f} ms"


async def bench_sqlite(rows: int, drains: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
        path = Path(tmp) / "app.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"CREATE TABLE {TABLE}")
        print(f"SQLite {sqlite3.sqlite_version} (WAL), {rows} rows")
        for per_row in (True, False):
            label = "1 tx/row " if per_row else "1 tx/all "
            plain = sqlite_writes(path, rows, per_row)
            async with SqliteCapture(path) as capture:
                await capture.install()
                captured = sqlite_writes(path, rows, per_row)
                await capture.uninstall()
            report(label, rows, plain, captured)
        async with SqliteCapture(path) as capture:
            await capture.install()

            async def write(n: int) -> None:
                conn.execute("BEGIN")
                for _ in range(n):
                    conn.execute("INSERT INTO items (name, qty) VALUES ('x', 1)")
                conn.execute("COMMIT")

            for n in (1, 10):
                times = await drain_latency(capture, write, drains, n)
                print(f"  drain() of {n:>2} change(s): {summary(times)}")
            await capture.uninstall()
        conn.close()


async def bench_postgres(rows: int, drains: int) -> None:
    with PostgresServer() as server:
        dsn = await server.create_database()
        app = await asyncpg.connect(dsn)
        try:
            await app.execute(f"CREATE TABLE {PG_TABLE}")
            version = await app.fetchval("SHOW server_version")
            print(f"PostgreSQL {version}, {rows} rows")
            for per_row in (True, False):
                label = "1 tx/row " if per_row else "1 tx/all "
                plain = await pg_writes(dsn, rows, per_row)
                async with PostgresCapture(dsn) as capture:
                    await capture.install()
                    captured = await pg_writes(dsn, rows, per_row)
                    await capture.uninstall()
                report(label, rows, plain, captured)
            async with PostgresCapture(dsn) as capture:
                await capture.install()

                async def write(n: int) -> None:
                    async with app.transaction():
                        await app.executemany("INSERT INTO items (name, qty) VALUES ($1, 1)",
                                              [("x",)] * n)

                for n in (1, 10):
                    times = await drain_latency(capture, write, drains, n)
                    print(f"  drain() of {n:>2} change(s): {summary(times)}")
                await capture.uninstall()
        finally:
            await app.close()
            await server.drop_databases()


def report(label: str, rows: int, plain: tuple[float, float],
           captured: tuple[float, float]) -> None:
    for i, op in enumerate(("insert", "update")):
        cost = (captured[i] - plain[i]) / rows * 1e6
        print(f"  {op} {label}: without {rate(rows, plain[i])}  with {rate(rows, captured[i])}"
              f"  ({captured[i] / plain[i]:.2f}x time, +{cost:.1f} us/row)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--drains", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(bench_sqlite(args.rows, args.drains))
    asyncio.run(bench_postgres(args.rows, args.drains))


if __name__ == "__main__":
    main()
