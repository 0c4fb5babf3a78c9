"""The gate's view of findings: which findings explained the mismatching exchanges of
the current gate window.

The gate counts mismatching exchanges per route. An exchange whose every finding is one
the operator marked as not blocking (expected, noise) is *excused*: the gate takes it off
its route's mismatches. Because a state can change after the exchange was counted, the
window keeps, per route, how many exchanges had each combination of findings (a handful
per route in practice; past `max_combos` an exchange is kept as always blocking). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class GateWindow:
    """Per route ("METHOD /template"), exchanges per combination of finding keys."""

    def __init__(self, since: float = 0.0, max_combos: int = 5000) -> None:
        self.since = since
        self.max_combos = max_combos
        self.combos: dict[tuple[str, frozenset[str]], list[int]] = {}
        self.dirty = False

    def observe(self, since: float, route: str, keys: Iterable[str], rows: bool) -> None:
        """One mismatching exchange of `route` explained by findings `keys`; `rows` when
        it had row differences. A new gate window (`since` moved) starts afresh."""
        if since != self.since:
            self.since = since
            self.combos.clear()
        combo = (route, frozenset(keys))
        counts = self.combos.get(combo)
        if counts is None:
            if len(self.combos) >= self.max_combos:
                return
            counts = self.combos[combo] = [0, 0]
        counts[0] += 1
        counts[1] += int(rows)
        self.dirty = True

    def sync(self, since: float) -> None:
        if since != self.since:
            self.since = since
            self.combos.clear()
            self.dirty = True

    def excused(self, blocks: Callable[[str], bool]) -> dict[str, tuple[int, int]]:
        """Route -> (mismatching exchanges, of them with row differences) whose every
        finding does not block."""
        out: dict[str, list[int]] = {}
        for (route, keys), (n, rows) in self.combos.items():
            if keys and not any(blocks(key) for key in keys):
                entry = out.setdefault(route, [0, 0])
                entry[0] += n
                entry[1] += rows
        return {route: (n, rows) for route, (n, rows) in out.items()}

    def exchanges(self) -> dict[str, int]:
        """Finding key -> mismatching exchanges of the window it took part in."""
        out: dict[str, int] = {}
        for (_, keys), (n, _) in self.combos.items():
            for key in keys:
                out[key] = out.get(key, 0) + n
        return out

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since,
                "combos": [[route, sorted(keys), n, rows]
                           for (route, keys), (n, rows) in self.combos.items()]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> GateWindow:
        window = cls()
        if data:
            window.since = float(data.get("since", 0.0))
            for route, keys, n, rows in data.get("combos", []):
                window.combos[(route, frozenset(keys))] = [int(n), int(rows)]
        return window
