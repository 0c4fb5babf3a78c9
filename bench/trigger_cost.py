#!/usr/bin/env python3
"""What change capture costs the application: write throughput with and without the
capture triggers, on SQLite and on PostgreSQL, and the latency of one `drain()`.

    python bench/trigger_cost.py [--rows 2000] [--repeat 15] [--drains 300]
                                 [--only sqlite|postgres]

SQLite: a WAL-mode file in a temporary directory, written through the stdlib driver
(as the legacy app would). PostgreSQL: SHADOW_POSTGRES_DSN, else an embedded server;
written through asyncpg. Each write case runs once with one transaction per row (what a
web request does) and once with all rows in one transaction (the trigger's own CPU cost,
without commit overhead). The change log is not drained during a write case.

Fairness: both sides of a comparison write the same rows to the same freshly emptied
table through a new connection opened the same way (the server settings that decide
commit cost are printed once and are the same for both). One untimed warm-up pass of
each side comes first; then `--repeat` rounds each time both sides, alternating which
goes first, and on PostgreSQL a CHECKPOINT before every timed pass so that neither side
pays for the other's dirty pages. Many short rounds rather than a few long ones: a burst
of other work on a shared machine then spoils a few rounds, which the median ignores.
Reported: the median rate of each side, and the cost as the median over rounds of the
captured/plain time ratio (pairing the two passes of a round cancels slow drift), with
the interquartile range of that ratio. On an embedded server the CPU time of the
writing backend is reported too: it is steadier than wall time when other work runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shadow.pgserver import PostgresServer
from shadow.rows.postgres import PostgresCapture
from shadow.rows.sqlite import SqliteCapture

TABLE = "items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, updated_at TEXT)"
PG_TABLE = ("items (id serial PRIMARY KEY, name text, qty integer, price numeric(10, 2), "
            "updated_at timestamptz)")
PG_SETTINGS = ("synchronous_commit", "fsync", "wal_level", "full_page_writes")
OPS = ("insert", "update")


@dataclass
class Pass:
    """One timed pass: seconds for the inserts and for the updates, and the server CPU
    seconds they took (None when not measurable)."""

    seconds: tuple[float, float]
    cpu: tuple[float, float] | None = None


Run = Callable[[int], Awaitable[Pass]]


async def rounds(plain: Run, captured: Run, rows: int, repeat: int) -> list[tuple[Pass, Pass]]:
    """A warm-up of each side, then `repeat` (plain, captured) pairs, alternating order."""
    await plain(max(rows // 5, 1))
    await captured(max(rows // 5, 1))
    pairs = []
    for i in range(repeat):
        if i % 2 == 0:
            first = await plain(rows)
            pairs.append((first, await captured(rows)))
        else:
            second = await captured(rows)
            pairs.append((await plain(rows), second))
    return pairs


def report(label: str, rows: int, pairs: list[tuple[Pass, Pass]]) -> None:
    """One line per operation: median rates, the cost in time per write and in writes
    per second, and the server CPU per row when it was measured."""
    for i, op in enumerate(OPS):
        plain = [rows / p.seconds[i] for p, _ in pairs]
        captured = [rows / c.seconds[i] for _, c in pairs]
        ratios = [c.seconds[i] / p.seconds[i] for p, c in pairs]
        ratio = statistics.median(ratios)
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio] * 3
        line = (f"  {op} {label}: without {statistics.median(plain):>9,.0f}/s  "
                f"with {statistics.median(captured):>9,.0f}/s  cost {(ratio - 1) * 100:+.1f}% "
                f"time/write, {(1 / ratio - 1) * 100:+.1f}% writes/s "
                f"(IQR {low:.2f}x..{high:.2f}x)")
        if all(p.cpu and c.cpu for p, c in pairs):
            cpu_plain = statistics.median(p.cpu[i] for p, _ in pairs) / rows * 1e6
            cpu_with = statistics.median(c.cpu[i] for _, c in pairs) / rows * 1e6
            line += (f"\n  {'':6} {'':9}  server CPU {cpu_plain:.1f} -> {cpu_with:.1f} us/row "
                     f"({(cpu_with / cpu_plain - 1) * 100:+.0f}%)")
        print(line)


def sqlite_writes(path: Path, rows: int, per_row: bool) -> Pass:
    """`rows` inserts, then `rows` updates, through the app's own driver; one
    transaction per row, or one for all rows."""
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
        return Pass((inserted, timed(update, ids)))
    finally:
        conn.close()


def backend_cpu(pid: int | None) -> float | None:
    """CPU seconds a local server process has used, or None when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


async def pg_writes(dsn: str, rows: int, per_row: bool, local: bool) -> Pass:
    """`rows` inserts, then `rows` updates, on a new connection; `local` when the server
    runs on this machine, so that its backend's CPU time can be read."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE items RESTART IDENTITY")
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            pass
        pid = await conn.fetchval("SELECT pg_backend_pid()") if local else None
        insert = "INSERT INTO items (name, qty, price, updated_at) VALUES ($1, $2, $3, now())"
        update = "UPDATE items SET qty = qty + 1, updated_at = now() WHERE id = $1"
        seconds, cpu = [], []
        for statement, args in ((insert, [(f"item {i}", i, i * 1.25) for i in range(rows)]),
                                (update, [(i,) for i in range(1, rows + 1)])):
            cpu_start, start = backend_cpu(pid), time.perf_counter()
            if per_row:
                for row in args:
                    await conn.execute(statement, *row)
            else:
                async with conn.transaction():
                    await conn.executemany(statement, args)
            seconds.append(time.perf_counter() - start)
            cpu_end = backend_cpu(pid)
            cpu.append(None if cpu_start is None or cpu_end is None else cpu_end - cpu_start)
        return Pass((seconds[0], seconds[1]),
                    None if None in cpu else (cpu[0], cpu[1]))
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


async def bench_sqlite(rows: int, repeat: int, drains: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
        path = Path(tmp) / "app.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"CREATE TABLE {TABLE}")
            synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
            print(f"SQLite {sqlite3.sqlite_version} (WAL, synchronous={synchronous}), "
                  f"{rows} rows, median of {repeat} rounds")
            for per_row in (True, False):

                async def plain(n: int, per_row: bool = per_row) -> Pass:
                    return sqlite_writes(path, n, per_row)

                async def captured(n: int, per_row: bool = per_row) -> Pass:
                    async with SqliteCapture(path) as capture:
                        await capture.install()
                        try:
                            return sqlite_writes(path, n, per_row)
                        finally:
                            await capture.uninstall()

                label = "1 tx/row " if per_row else "1 tx/all "
                report(label, rows, await rounds(plain, captured, rows, repeat))
            if drains > 0:
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
        finally:
            conn.close()


async def bench_postgres(rows: int, repeat: int, drains: int) -> None:
    with PostgresServer() as server:
        dsn = await server.create_database()
        local = not server.external
        app = await asyncpg.connect(dsn)
        try:
            await app.execute(f"CREATE TABLE {PG_TABLE}")
            version = await app.fetchval("SHOW server_version")
            settings = [f"{name}={await app.fetchval(f'SHOW {name}')}" for name in PG_SETTINGS]
            print(f"PostgreSQL {version} ({', '.join(settings)}), {rows} rows, "
                  f"median of {repeat} rounds")
            for per_row in (True, False):

                async def plain(n: int, per_row: bool = per_row) -> Pass:
                    return await pg_writes(dsn, n, per_row, local)

                async def captured(n: int, per_row: bool = per_row) -> Pass:
                    async with PostgresCapture(dsn, method="triggers") as capture:
                        await capture.install()
                        try:
                            return await pg_writes(dsn, n, per_row, local)
                        finally:
                            await capture.uninstall()

                label = "1 tx/row " if per_row else "1 tx/all "
                report(label, rows, await rounds(plain, captured, rows, repeat))
            if drains > 0:
                async with PostgresCapture(dsn, method="triggers") as capture:
                    await capture.install()

                    async def write(n: int) -> None:
                        async with app.transaction():
                            await app.executemany(
                                "INSERT INTO items (name, qty) VALUES ($1, 1)", [("x",)] * n)

                    for n in (1, 10):
                        times = await drain_latency(capture, write, drains, n)
                        print(f"  drain() of {n:>2} change(s): {summary(times)}")
                    await capture.uninstall()
        finally:
            await app.close()
            await server.drop_databases()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--drains", type=int, default=300)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if args.only != "postgres":
        asyncio.run(bench_sqlite(args.rows, args.repeat, args.drains))
    if args.only != "sqlite":
        asyncio.run(bench_postgres(args.rows, args.repeat, args.drains))


if __name__ == "__main__":
    main()
