"""What comparing lists by their clocks costs the walker (shadow.compare.clock_order).

Run: .venv/bin/python -m bench.clock_order_cost [--repeat 5]

Each case walks one pair of replies holding a list of N objects, with the rule on and
with it off (the walker told no element holds a stamp), under a replay lag of 2 s:

    equal           both lists equal, element by element
    last changed    one member of the last element differs
    reversed        the shadow lists oldest first (every comparison of that bug)

with and without a timestamp member in the elements. Prints microseconds per walk (best
of `--repeat` runs) and the ratio on/off. Compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import copy
import timeit
from typing import Any

import shadow.compare.walk as walk
from shadow.compare.rules import build_rules


def entries(count: int, stamped: bool) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        entry: dict[str, Any] = {"id": i, "title": f"entry {i}", "body": "some words",
                                 "mood": i % 5, "tags": ["a", "b"]}
        if stamped:
            entry["created_at"] = f"2026-12-05 21:{i // 60 % 60:02d}:{i % 60:02d}"
        out.append(entry)
    return out


def cases(count: int) -> dict[str, tuple[Any, Any]]:
    found = {}
    for stamped in (True, False):
        primary = {"entries": entries(count, stamped)}
        changed = copy.deepcopy(primary)
        changed["entries"][-1]["title"] = "changed"
        found[f"equal        stamps={stamped!s:5} n={count}"] = (primary, copy.deepcopy(primary))
        found[f"last changed stamps={stamped!s:5} n={count}"] = (primary, changed)
        found[f"reversed     stamps={stamped!s:5} n={count}"] = (
            primary, {"entries": list(reversed(copy.deepcopy(primary["entries"])))})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    walker = walk.Walker(build_rules().at_lag(2.0))
    stamped = walk.stamped
    print(f"{'case':38} {'off µs':>8} {'on µs':>8} {'on/off':>7}")
    for count in (20, 100):
        for name, (primary, shadow) in cases(count).items():
            timing = []
            for on in (False, True):
                walk.stamped = stamped if on else (lambda element: False)
                runs = timeit.repeat(lambda: walker.compare(primary, shadow),  # noqa: B023
                                     number=100, repeat=args.repeat)
                timing.append(min(runs) / 100 * 1e6)
            walk.stamped = stamped
            print(f"{name:38} {timing[0]:8.0f} {timing[1]:8.0f} {timing[1] / timing[0]:7.2f}")


if __name__ == "__main__":
    main()
