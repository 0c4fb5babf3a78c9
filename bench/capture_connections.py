#!/usr/bin/env python3
"""What capture costs an app per request, pooled and with a connection per request, on a
schema of real size (40 tables of 12 columns), SQLite and PostgreSQL, and what one
`drain()` costs per change.

    python -m bench.capture_connections [--requests 200] [--repeat 7] [--only sqlite|postgres]

One request: (connect,) one read, one insert, commit (, close). "per-connection" opens a
new connection for every request, as many Flask apps do; "pooled" keeps one. Each
method is compared with no capture in the same run: rounds alternate which goes first,
and the figure is the median over rounds of the per-round time ratio (pairing cancels
slow drift on a shared machine). PostgreSQL: SHADOW_POSTGRES_DSN, else an embedded
server; with logical decoding only when the server runs with wal_level=logical.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from shadow.pgserver import PostgresServer
from shadow.rows.capture import Capture
from shadow.rows.live import open_capture
from shadow.rows.model import RowRules

TABLES = 40
TYPES_SQLITE = ("TEXT", "INTEGER", "REAL", "DATETIME")
TYPES_PG = ("text", "integer", "double precision", "timestamptz")

Requests = Callable[[int, bool], Awaitable[float]]


def columns(types: tuple[str, ...]) -> str:
    return ", ".join(f"c{i} {types[i % 4]}" for i in range(12))


def sqlite_requests(path: Path) -> Requests:
    async def run(n: int, per_connection: bool) -> float:
        conn = None if per_connection else sqlite3.connect(path)
        start = time.perf_counter()
        for i in range(n):
            c = sqlite3.connect(path) if per_connection else conn
            c.execute("SELECT count(*) FROM t3").fetchone()
            c.execute(f"INSERT INTO t{i % TABLES} (c0, c1) VALUES ('x', ?)", (i,))
            c.commit()
            if per_connection:
                c.close()
        elapsed = time.perf_counter() - start
        if conn is not None:
            conn.close()
        return elapsed / n
    return run


def pg_requests(dsn: str) -> Requests:
    async def run(n: int, per_connection: bool) -> float:
        conn = None if per_connection else await asyncpg.connect(dsn)
        start = time.perf_counter()
        for i in range(n):
            c = await asyncpg.connect(dsn) if per_connection else conn
            await c.fetchval("SELECT count(*) FROM t3")
            await c.execute(f"INSERT INTO t{i % TABLES} (c0, c1) VALUES ('x', $1)", i)
            if per_connection:
                await c.close()
        elapsed = time.perf_counter() - start
        if conn is not None:
            await conn.close()
        return elapsed / n
    return run


async def compare(label: str, requests: Requests, install: Callable[[], Awaitable[Capture]],
                  n: int, repeat: int) -> None:
    """Per pattern: ms per request without and with capture, and the median ratio."""
    for per_connection in (True, False):
        pattern = "per-connection" if per_connection else "pooled"
        capture = await install()
        await capture.uninstall()
        plain_ms, with_ms, ratios = [], [], []
        await requests(max(n // 5, 1), per_connection)
        for i in range(repeat):
            order = (False, True) if i % 2 == 0 else (True, False)
            times = {}
            for captured in order:
                if captured:
                    await capture.install()
                times[captured] = await requests(n, per_connection)
                if captured:
                    await capture.drain()
                    await capture.uninstall()
            plain_ms.append(times[False] * 1000)
            with_ms.append(times[True] * 1000)
            ratios.append(times[True] / times[False])
        await capture.close()
        print(f"  {label} {pattern:>14}: without {statistics.median(plain_ms):.3f} ms, "
              f"with {statistics.median(with_ms):.3f} ms per request, "
              f"ratio {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
              f"max {max(ratios):.2f})")


async def drain_cost(capture: Capture, write: Callable[[int], None | Awaitable[None]],
                     label: str, drains: int = 100, per_drain: int = 10) -> None:
    """Median time of one drain() per change it returns."""
    await capture.install()
    await capture.drain()
    per_change = []
    for _ in range(drains):
        done = write(per_drain)
        if done is not None:
            await done
        start = time.perf_counter()
        changes = await capture.drain()
        per_change.append((time.perf_counter() - start) * 1e6 / max(len(changes), 1))
    await capture.uninstall()
    await capture.close()
    print(f"  {label} drain: {statistics.median(per_change):.0f} us per change "
          f"({per_drain} changes per drain, median of {drains})")


async def bench_sqlite(n: int, repeat: int) -> None:
    for method in ("wal", "triggers"):
        with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
            path = Path(tmp) / "app.db"
            conn = sqlite3.connect(path)
            if method == "wal":  # without capture too: the same journal mode both ways
                conn.execute("PRAGMA journal_mode = WAL")
            for t in range(TABLES):
                conn.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             f"{columns(TYPES_SQLITE)})")
            conn.commit()
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            print(f"SQLite {sqlite3.sqlite_version}, capture {method}, journal {journal}, "
                  f"{TABLES} tables, {n} requests x {repeat} rounds")

            async def install(method: str = method) -> Capture:
                capture = open_capture(f"sqlite:///{path}", RowRules(), sqlite_method=method)
                await capture.open()
                return capture

            await compare(f"sqlite {method}", sqlite_requests(path), install, n, repeat)

            def write(k: int) -> None:
                for i in range(k):
                    conn.execute(f"INSERT INTO t{i % TABLES} (c0) VALUES ('d')")
                conn.commit()

            await drain_cost(await install(), write, f"sqlite {method}")
            conn.close()


async def bench_postgres(n: int, repeat: int) -> None:
    with PostgresServer() as server:
        dsn = await server.create_database()
        app = await asyncpg.connect(dsn)
        try:
            for t in range(TABLES):
                await app.execute(f"CREATE TABLE t{t} (id serial PRIMARY KEY, {columns(TYPES_PG)})")
            print(f"PostgreSQL {await app.fetchval('SHOW server_version')}, wal_level "
                  f"{await app.fetchval('SHOW wal_level')}, {TABLES} tables, "
                  f"{n} requests x {repeat} rounds")

            methods = ["triggers"]
            if await app.fetchval("SHOW wal_level") == "logical":
                methods.append("decoding")

            async def write(k: int) -> None:
                async with app.transaction():
                    for i in range(k):
                        await app.execute(f"INSERT INTO t{i % TABLES} (c0) VALUES ('d')")

            for method in methods:

                async def install(method: str = method) -> Capture:
                    capture = open_capture(dsn, RowRules(), method=method)
                    await capture.open()
                    return capture

                await compare(f"postgres {method}", pg_requests(dsn), install, n, repeat)
                await drain_cost(await install(), write, f"postgres {method}")
        finally:
            await app.close()
            await server.drop_databases()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if args.only != "postgres":
        asyncio.run(bench_sqlite(args.requests, args.repeat))
    if args.only != "sqlite":
        asyncio.run(bench_postgres(args.requests, args.repeat))


if __name__ == "__main__":
    main()
