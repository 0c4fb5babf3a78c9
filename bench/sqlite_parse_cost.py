#!/usr/bin/env python3
"""What SQLite row capture costs a new connection before its first statement: the CPU of
connect + one read + close on 40 tables of 12 columns, for no capture, 120 do-nothing
triggers (the floor of any row trigger: three per table), the trigger form of the
previous version, and the capture `shadow rows install` makes now. Median of 9 rounds of
500 connections each, all four in the same run (CPU time, so disk noise stays out).

    python -m bench.sqlite_parse_cost

The parse is most of what capture costs a connection, and the floor is most of the
parse: 120 trigger objects are needed (SQLite's trigger covers one of INSERT, UPDATE,
DELETE on one table) and each costs about 2 us whatever it does. Where the rest goes
(the first insert's compile, the log row) and what other trigger and log shapes would
save: `python -m bench.sqlite_capture_breakdown` (time) and `--instructions` (counts).
"""

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time

from shadow.rows import sqlite_schema as schema
from shadow.rows.sqlite import SqliteCapture

PREVIOUS_LOG = (
    'CREATE TABLE "_shadow_changes" (seq INTEGER PRIMARY KEY, t INTEGER NOT NULL, '
    "o TEXT NOT NULL, r, k, at REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0))")
PREVIOUS = (("i", "INSERT", "t,o,r)VALUES({t},'i',NEW.rowid"),
            ("u", "UPDATE", "t,o,r,k)VALUES({t},'u',NEW.rowid,OLD.rowid"),
            ("d", "DELETE", "t,o,r,k)VALUES({t},'d',OLD.rowid,OLD.rowid"))

def make(path: str) -> sqlite3.Connection:
    c = sqlite3.connect(path)
    for t in range(40):
        cols = ", ".join("c%d %s" % (i, ("TEXT", "INTEGER", "REAL", "DATETIME")[i % 4]) for i in range(12))
        c.execute("CREATE TABLE t%d (id INTEGER PRIMARY KEY AUTOINCREMENT, %s)" % (t, cols))
    c.commit(); return c
def parse(path: str, n: int = 500) -> float:
    """CPU microseconds per connection that opens, reads once and closes."""
    p0 = time.process_time()
    for i in range(n):
        c = sqlite3.connect(path); c.execute("SELECT 1 FROM t3 LIMIT 0").fetchall(); c.close()
    return (time.process_time() - p0) / n * 1e6
async def install(path: str) -> None:
    async with SqliteCapture(path) as capture:
        await capture.install()


def main() -> None:
    work = tempfile.mkdtemp(prefix="shadow-parse-cost-")
    paths = {k: os.path.join(work, k + ".db") for k in ("none", "floor", "previous", "current")}
    for kind, path in paths.items():
        c = make(path)
        for t in range(40):
            if kind == "floor":
                for o, event in (("i", "INSERT"), ("u", "UPDATE"), ("d", "DELETE")):
                    c.execute(f'CREATE TRIGGER "_shadow_{o}_t{t}" AFTER {event} ON "t{t}" '
                              "BEGIN SELECT 1;END")
            elif kind == "previous":
                if t == 0:
                    c.execute(PREVIOUS_LOG)
                for o, event, values in PREVIOUS:
                    c.execute(f'CREATE TRIGGER "_shadow_{o}_t{t}" AFTER {event} ON "t{t}" BEGIN '
                              f"INSERT INTO _shadow_changes({values.format(t=t)});END")
        if kind == "previous":
            c.execute(schema.cap_sql(schema.DEFAULT_CAP))
        c.commit()
        c.close()
    asyncio.run(install(paths["current"]))
    runs: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(9):
        for kind, path in paths.items():
            runs[kind].append(parse(path))
    base = statistics.median(runs["none"])
    for kind, path in paths.items():
        c = sqlite3.connect(path)
        objects, chars = c.execute("SELECT count(*), sum(length(sql)) FROM sqlite_master").fetchone()
        c.close()
        median = statistics.median(runs[kind])
        print(f"{kind:9s} {median:6.0f} us per connection (+{median - base:4.0f} us), "
              f"schema {objects} objects, {chars} chars")


if __name__ == "__main__":
    main()
