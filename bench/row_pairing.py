"""What pairing inserts by content costs the row diff, measured in one run.

One group of n inserts per side (a notes table: title, done, a timestamp, a score), the
shadow with one extra row in the middle and its rows in another order (reversed in
blocks of 8, as overlapping writes commit), diffed with `diff_rows` through the dialect
bridge. Prints the best of 5 runs per n, the time per insert, and the differences found
(one `row_extra` expected at every size). Linear cost shows as a flat time per insert.
Usage: python -m bench.row_pairing [--sizes 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import time

from shadow.compare.bridge import kind_of_postgres, kind_of_sqlite
from shadow.rows.diff import diff_rows
from shadow.rows.keymap import KeyMap
from shadow.rows.model import Column, RowRules, TableInfo
from shadow.verdict import RowChange

COLUMNS = {"id": ("INTEGER", "integer"), "title": ("TEXT", "text"),
           "done": ("BOOLEAN", "boolean"), "at": ("DATETIME", "timestamp with time zone"),
           "score": ("REAL", "numeric")}


def tables(index: int, kind_of) -> dict[str, TableInfo]:
    cols = tuple(Column(name, types[index], kind_of(types[index]))
                 for name, types in COLUMNS.items())
    return {"notes": TableInfo("notes", ("id",), cols)}


def group(n: int) -> tuple[list[RowChange], list[RowChange]]:
    legacy = [RowChange("notes", (k,), "insert", None, {
        "id": k, "title": f"note {k % 997}", "done": k % 2, "score": float(k % 13),
        "at": f"2026-02-04 15:{(k // 60) % 60:02d}:{k % 60:02d}"}) for k in range(1, n + 1)]
    rows = [(f"note {k % 997}", k % 2 == 1, k % 13, (k // 60) % 60, k % 60)
            for k in range(1, n + 1)]
    rows.insert(n // 2, ("intruder", False, 0, 0, 0))
    blocks = [rows[i:i + 8][::-1] for i in range(0, len(rows), 8)]
    rows = [row for block in blocks for row in block]
    candidate = [RowChange("notes", (k,), "insert", None, {
        "id": k, "title": title, "done": done, "score": score,
        "at": f"2026-02-04T15:{minute:02d}:{second:02d}+00:00"})
        for k, (title, done, score, minute, second) in enumerate(rows, 1)]
    return legacy, candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    p_tables, s_tables = tables(0, kind_of_sqlite), tables(1, kind_of_postgres)
    print(f"{'inserts':>8} {'best of 5':>10} {'per insert':>11}  differences")
    for n in sizes:
        legacy, candidate = group(n)
        best, found = float("inf"), ()
        for _ in range(5):
            start = time.perf_counter()
            result = diff_rows(legacy, candidate, primary_tables=p_tables,
                               shadow_tables=s_tables, rules=RowRules(), keymap=KeyMap())
            best = min(best, time.perf_counter() - start)
            found = result.differences
        kinds = ", ".join(f"{d.kind} {d.path}" for d in found[:3]) + (" ..." if len(found) > 3 else "")
        print(f"{n:>8} {best * 1000:>8.1f}ms {best / n * 1e6:>9.1f}µs  {len(found)}: {kinds}")


if __name__ == "__main__":
    main()
