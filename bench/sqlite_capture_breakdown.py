#!/usr/bin/env python3
"""Where SQLite row capture's per-connection cost goes, and what other trigger and log
shapes would save: 40 tables of 12 columns, one database file per variant, all measured
in the same run.

    python -m bench.sqlite_capture_breakdown [--rounds 7] [--requests 200]
    python -m bench.sqlite_capture_breakdown --instructions [--requests 100]

Time (default): rounds interleave the variants (every other round in reverse order);
the median per variant, in microseconds per connection, and its delta over `none`:
  (a) parse    CPU of connect + one read + close: SQLite parses the whole schema,
               triggers included, before a new connection's first statement
  (b) compile  CPU of connect + read + insert + rollback + close, less (a) and (c): the
               fired trigger's program (and the cap trigger it fires in turn) compiled
               into the app's first INSERT on that connection
  (c) run      CPU of read + insert + rollback on a kept connection: the trigger running
               and the log row it writes (no disk: rolled back)
  request      CPU and wall of connect + read + insert + commit + close, as the shared
               production check runs it (wall includes the commit's disk writes)
`--instructions` counts instructions instead (valgrind's callgrind: the same count on
a busy or an idle machine): per connection, (a) and the whole first write
(connect + read + insert + rollback + close), as deltas over `none`.

Variants: `floor` is three do-nothing triggers per table (`SELECT 1`), the least any
per-row trigger costs; `installed` is what `shadow rows install` makes; the others change
one thing each (see VARIANTS). `three-values` and `two-values` are not sound (they leave
out the old key, and the time): they show what the logged values cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from shadow.rows.sqlite import SqliteCapture

TABLES = 40
EVENTS = (("i", "INSERT", 1), ("u", "UPDATE", 2), ("d", "DELETE", 3))
JD = "(julianday('now') - 2440587.5) * 86400.0"
Build = Callable[[sqlite3.Connection], None]


def shaped(create_log: str, values: dict[str, str], *, names: str = "table",
           cap: str | None = "seq") -> Build:
    """A builder of one trigger/log shape: `values` maps an event letter to what follows
    `INSERT INTO _shadow_changes` ({code} filled in); trigger names carry the table's
    name (quoted, as installed) or its code (a bare identifier); `cap` names the log
    column the cap trigger counts by (None: no cap trigger)."""
    def build(c: sqlite3.Connection) -> None:
        c.execute(create_log)
        for t in range(TABLES):
            for o, event, op in EVENTS:
                code = (t + 1) * 4 + op
                name = f'"_shadow_{o}_t{t}"' if names == "table" else f"_shadow_{code}"
                c.execute(f'CREATE TRIGGER {name} AFTER {event} ON "t{t}" BEGIN '
                          f"INSERT INTO _shadow_changes{values[o].format(code=code)};END")
        if cap:
            c.execute(f'CREATE TRIGGER "_shadow_cap" AFTER INSERT ON "_shadow_changes" '
                      f'WHEN NEW.{cap} % 1024 = 0 BEGIN DELETE FROM "_shadow_changes" '
                      f"WHERE {cap} <= NEW.{cap} - 100000;END")
    return build


def floor(c: sqlite3.Connection) -> None:
    for t in range(TABLES):
        for o, event, _op in EVENTS:
            c.execute(f'CREATE TRIGGER "_shadow_{o}_t{t}" AFTER {event} ON "t{t}" '
                      "BEGIN SELECT 1;END")


LOG = ("CREATE TABLE _shadow_changes (seq INTEGER PRIMARY KEY, c INTEGER NOT NULL, r, k, "
       f"at REAL DEFAULT ({JD}))")
LISTED = {"i": "(c,r)VALUES({code},NEW.rowid)", "u": "(c,r,k)VALUES({code},NEW.rowid,OLD.rowid)",
          "d": "(c,r)VALUES({code},OLD.rowid)"}
BARE = {"i": " VALUES({code},NEW.rowid,NULL,julianday())",
        "u": " VALUES({code},NEW.rowid,OLD.rowid,julianday())",
        "d": " VALUES({code},OLD.rowid,NULL,julianday())"}
THREE = {o: " VALUES({code},%s.rowid,julianday())" % ("OLD" if o == "d" else "NEW") for o in "iud"}
TWO = {o: " VALUES({code},%s.rowid)" % ("OLD" if o == "d" else "NEW") for o in "iud"}

#: name -> builder (None: no capture; "install": what `shadow rows install` makes).
VARIANTS: dict[str, Build | str | None] = {
    "none": None,
    "floor": floor,
    "installed": "install",
    "no-cap": shaped(LOG, LISTED, cap=None),
    "code-names": shaped(LOG, LISTED, names="code"),
    "raw-julian": shaped("CREATE TABLE _shadow_changes (seq INTEGER PRIMARY KEY, "
                         "c INTEGER NOT NULL, r, k, at REAL DEFAULT (julianday()))", LISTED),
    "bare-values": shaped("CREATE TABLE _shadow_changes (c INT, r, k, at)", BARE, cap="rowid"),
    "three-values": shaped("CREATE TABLE _shadow_changes (c INT, r, at)", THREE, cap="rowid"),
    "two-values": shaped("CREATE TABLE _shadow_changes (c INT, r)", TWO, cap="rowid"),
}


def make(path: str, build: Build | str | None) -> None:
    c = sqlite3.connect(path)
    cols = ", ".join(f"c{i} {('TEXT', 'INTEGER', 'REAL', 'DATETIME')[i % 4]}" for i in range(12))
    for t in range(TABLES):
        c.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
    if callable(build):
        build(c)
    c.commit()
    c.close()
    if build == "install":
        async def install() -> None:
            async with SqliteCapture(path) as capture:
                await capture.install()
        asyncio.run(install())


def steps(path: str) -> tuple[dict[str, Callable[[int], None]], sqlite3.Connection]:
    """The measured steps on the database at `path`, and the kept connection `pooled` uses."""
    def insert(c: sqlite3.Connection, i: int) -> None:
        c.execute("SELECT count(*) FROM t3").fetchone()
        c.execute(f"INSERT INTO t{i % TABLES} (c0, c1) VALUES ('x', ?)", (i,))

    def parse(_i: int) -> None:
        c = sqlite3.connect(path)
        c.execute("SELECT 1 FROM t3 LIMIT 0").fetchall()
        c.close()

    def first(i: int) -> None:
        c = sqlite3.connect(path)
        insert(c, i)
        c.rollback()
        c.close()

    def request(i: int) -> None:
        c = sqlite3.connect(path)
        insert(c, i)
        c.commit()
        c.close()

    def pooled(i: int) -> None:
        insert(kept, i)
        kept.rollback()

    kept = sqlite3.connect(path)
    for i in range(TABLES):
        pooled(i)
    return {"parse": parse, "first": first, "pooled": pooled, "request": request}, kept


def timed(work: Callable[[int], None], n: int) -> tuple[float, float]:
    """(CPU, wall) microseconds per call of work(i), i in range(n)."""
    p0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        work(i)
    return (time.process_time() - p0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


def measure(path: str, n: int) -> dict[str, tuple[float, float]]:
    work, kept = steps(path)
    try:
        return {name: timed(step, n) for name, step in work.items()}
    finally:
        kept.close()


def schema_size(path: str) -> tuple[int, int]:
    c = sqlite3.connect(path)
    try:
        return c.execute("SELECT count(*), sum(length(sql)) FROM sqlite_master").fetchone()
    finally:
        c.close()


def report_times(paths: dict[str, str], rounds: int, n: int) -> None:
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {name: [] for name in paths}
    for r in range(rounds):
        for name in (list(paths) if r % 2 == 0 else list(reversed(paths))):
            runs[name].append(measure(paths[name], n))

    def med(name: str, what: str, clock: int = 0) -> float:
        return statistics.median(run[what][clock] for run in runs[name])

    print(f"{rounds} rounds of {n} connections; CPU and wall microseconds per connection, "
          f"median; [delta over none]; load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':13s} {'objects':>7s} {'chars':>6s} | {'(a) parse':>13s} "
          f"{'(b) compile':>11s} {'(c) run':>7s} {'CPU request':>14s} | "
          f"{'wall request':>15s} {'ratio':>5s}")
    for name, path in paths.items():
        objects, chars = schema_size(path)
        d = {w: med(name, w) - med("none", w) for w in ("parse", "first", "pooled", "request")}
        wall, base = med(name, "request", 1), med("none", "request", 1)
        print(f"{name:13s} {objects:7d} {chars:6d} | "
              f"{med(name, 'parse'):5.0f} [{d['parse']:+4.0f}] "
              f"{d['first'] - d['parse'] - d['pooled']:11.0f} {d['pooled']:7.0f} "
              f"{med(name, 'request'):5.0f} [{d['request']:+4.0f}] | "
              f"{wall:5.0f} [{wall - base:+5.0f}] {wall / base:5.2f}")


def instructions(path: str, what: str, n: int) -> int:
    """Instructions callgrind counts for this script looping `what` n times on `path`."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.sqlite_capture_breakdown", "--loop", path, what, str(n)],
        capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr)[1])


def report_instructions(paths: dict[str, str], n: int) -> None:
    print(f"instructions per connection (callgrind, {n} connections less none); "
          "[delta over none]")
    print(f"{'variant':13s} {'objects':>7s} {'chars':>6s} | {'(a) parse':>21s} | "
          f"{'first write':>21s}")
    counts = {}
    for name, path in paths.items():
        idle = instructions(path, "parse", 0)
        counts[name] = {what: (instructions(path, what, n) - idle) / n
                        for what in ("parse", "first")}
    for name, path in paths.items():
        objects, chars = schema_size(path)
        p, f = counts[name]["parse"], counts[name]["first"]
        p0, f0 = counts["none"]["parse"], counts["none"]["first"]
        print(f"{name:13s} {objects:7d} {chars:6d} | {p:9,.0f} [{p - p0:+9,.0f}] | "
              f"{f:9,.0f} [{f - f0:+9,.0f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--loop", nargs=3, metavar=("PATH", "STEP", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.loop:
        work, kept = steps(a.loop[0])
        for i in range(int(a.loop[2])):
            work[a.loop[1]](i)
        kept.close()
        return
    work_dir = tempfile.mkdtemp(prefix="shadow-capture-breakdown-")
    paths = {name: os.path.join(work_dir, f"{name}.db") for name in VARIANTS}
    for name, build in VARIANTS.items():
        make(paths[name], build)
    if a.instructions:
        report_instructions(paths, a.requests)
    else:
        report_times(paths, a.rounds, a.requests)


if __name__ == "__main__":
    main()
