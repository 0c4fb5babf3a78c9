"""The cutover gate: whether the evidence gathered in one window lets the mode move forward.

Pure: `evaluate(stats, thresholds)` reads counts and returns a `GateResult`; nothing here
does I/O or reads a clock. `GateStats` holds the counts of the current window, keyed by
"METHOD /template" (the gate's unit: one route template under one method).

The gate holds when, in its window,
  - there is evidence at all (at least one compared exchange: verdict match or mismatch);
  - every expected route (config `gate.expected_routes`) was seen;
  - every route seen has at least `min_compared` compared exchanges, and the one-sided 95%
    upper confidence bound (Wilson score) of its mismatch rate is under `max_mismatch_rate`;
  - no row mismatch is left unresolved, and the shadow is not diverged;
  - the shadow error rate, shadow_error / (compared + shadow_error), is under its limit;
  - no route has more than `max_raced_share` of its exchanges raced, raced / (compared +
    raced).
Every rule that fails adds one reason with its numbers; the gate holds when none does.

Raced exchanges (verdict `raced`: a read whose replies differed while writes overlapped it,
which the proxy could not settle) are not evidence either way: they are neither compared
exchanges nor mismatches, so a route needs its `min_compared` verified exchanges however
many raced, and its mismatch rate is that of its verified ones. A route that races far
more often than it is verified could hide a bug behind its races, so past
`max_raced_share` it fails the gate, named with its numbers.

The gate only asks "is the rate below the target?", so the bound is one-sided (z = 1.645).
With zero mismatches in n exchanges it is z^2 / (n + z^2), about 2.7/n (the "rule of three"
says 3/n for the exact binomial): a 0.1% target needs 2 703 clean exchanges per route.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shadow.verdict import Verdict

Z95 = 1.644854  # one-sided 95%: P(true rate > bound) <= 5%


def wilson_upper(failures: int, n: int, z: float = Z95) -> float:
    """The upper end of the Wilson score interval for `failures` out of `n`; 1.0 when n is 0."""
    if n <= 0:
        return 1.0
    p = failures / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z2 / n))


def compared_needed(failures: int, n: int, target: float, min_compared: int = 0) -> int:
    """The fewest further clean exchanges (no more failures) after which the route has at
    least `min_compared` and a Wilson upper bound under `target`; 0 when it already has.
    Raises ValueError when `target` is not in (0, 1]."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1]: {target}")

    def enough(extra: int) -> bool:
        total = n + extra
        return total >= min_compared and wilson_upper(failures, total) < target

    if enough(0):
        return 0
    high = max(1, min_compared - n)
    while not enough(high):
        high *= 2
    low = 0  # not enough(low); enough(high)
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high


def pct(rate: float) -> str:
    """A rate as a short percentage: 0.00128 -> '0.128%'."""
    return f"{rate * 100:.3g}%"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The gate's rules (config `[gate]`). `expected_routes` holds "METHOD /template" or
    "/template" (any method)."""

    min_compared: int = 1000
    max_mismatch_rate: float = 0.001
    max_shadow_error_rate: float = 0.01
    expected_routes: tuple[str, ...] = ()
    max_raced_share: float = 0.5


@dataclass(slots=True)
class RouteCounts:
    """Counts of one "METHOD /template" in the current window."""

    compared: int = 0
    mismatches: int = 0
    shadow_errors: int = 0
    row_mismatches: int = 0
    raced: int = 0


class GateStats:
    """The gate's counts for one window. Fed by the verifier's listener (`observe`) and by
    the row modules (`row_mismatch`, `resolve_row_mismatches`, `set_diverged`). `dirty`
    says the counts changed since the owner last persisted them."""

    def __init__(self, since: float = 0.0) -> None:
        self.since = since
        self.routes: dict[str, RouteCounts] = {}
        self.diverged = False
        self.dirty = False

    def _route(self, key: str) -> RouteCounts:
        counts = self.routes.get(key)
        if counts is None:
            counts = self.routes[key] = RouteCounts()
        self.dirty = True
        return counts

    def observe(self, method: str, template: str, verdict: Verdict | str) -> None:
        """Count one published comparison; skipped and primary errors say nothing about
        the shadow and are not counted; raced ones are counted apart from the compared."""
        if verdict in (Verdict.MATCH, Verdict.MISMATCH):
            counts = self._route(f"{method} {template}")
            counts.compared += 1
            counts.mismatches += verdict == Verdict.MISMATCH
        elif verdict == Verdict.SHADOW_ERROR:
            self._route(f"{method} {template}").shadow_errors += 1
        elif verdict == Verdict.RACED:
            self._route(f"{method} {template}").raced += 1

    def row_mismatch(self, route: str, n: int = 1) -> None:
        """Record `n` unresolved row mismatches on "METHOD /template"."""
        self._route(route).row_mismatches += n

    def resolve_row_mismatches(self, route: str | None = None) -> None:
        """Mark the row mismatches of one route (or of every route) as resolved."""
        for key, counts in self.routes.items():
            if route is None or key == route:
                counts.row_mismatches = 0
        self.dirty = True

    def set_diverged(self, diverged: bool) -> None:
        """The shadow's rows can (no longer) be compared; kept across window resets."""
        self.diverged = diverged
        self.dirty = True

    def reset(self, since: float) -> None:
        """Start a new window: every count goes, the divergence flag stays."""
        self.since = since
        self.routes.clear()
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "diverged": self.diverged,
                "routes": {k: [c.compared, c.mismatches, c.shadow_errors, c.row_mismatches,
                               c.raced] for k, c in self.routes.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, since: float = 0.0) -> GateStats:
        """Stats saved by `to_json`; a new window starting at `since` when there are none."""
        if not data:
            return cls(since)
        stats = cls(float(data.get("since", since)))
        stats.diverged = bool(data.get("diverged", False))
        for key, values in data.get("routes", {}).items():
            stats.routes[key] = RouteCounts(*(int(v) for v in values))
        return stats


@dataclass(frozen=True, slots=True)
class RouteGate:
    """One route's standing: its counts, the Wilson upper bound of its mismatch rate, and
    the clean exchanges it still needs (0 when it passes)."""

    route: str
    compared: int
    mismatches: int
    shadow_errors: int
    upper_bound: float
    compared_needed: int
    raced: int = 0

    @property
    def template(self) -> str:
        return self.route.partition(" ")[2] if " " in self.route else self.route


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's answer: `passed` when `reasons` is empty; one reason per failed rule."""

    passed: bool
    reasons: tuple[str, ...]
    routes: tuple[RouteGate, ...]
    compared: int
    mismatches: int
    shadow_errors: int
    shadow_error_rate: float
    row_mismatches: int
    diverged: bool
    since: float
    thresholds: Thresholds = field(default_factory=Thresholds)
    counted: tuple[dict[str, Any], ...] = ()
    uncounted: tuple[dict[str, Any], ...] = ()
    raced: int = 0

    def to_dict(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "passed": self.passed, "reasons": list(self.reasons), "since": self.since,
            "compared": self.compared, "mismatches": self.mismatches, "raced": self.raced,
            "shadow_errors": self.shadow_errors,
            "shadow_error_rate": round(self.shadow_error_rate, 6),
            "row_mismatches": self.row_mismatches, "diverged": self.diverged,
            "routes": [{"route": r.route, "compared": r.compared, "mismatches": r.mismatches,
                        "shadow_errors": r.shadow_errors, "raced": r.raced,
                        "upper_bound": round(r.upper_bound, 6),
                        "compared_needed": r.compared_needed} for r in self.routes],
            "thresholds": {"min_compared": t.min_compared,
                           "max_mismatch_rate": t.max_mismatch_rate,
                           "max_shadow_error_rate": t.max_shadow_error_rate,
                           "max_raced_share": t.max_raced_share,
                           "expected_routes": list(t.expected_routes)},
            "findings": {"counted": list(self.counted), "uncounted": list(self.uncounted)},
        }


def _seen(expected: str, keys: Iterable[str]) -> bool:
    if " " in expected:
        return expected in keys
    return any(key.partition(" ")[2] == expected for key in keys)


def evaluate(stats: GateStats, t: Thresholds) -> GateResult:
    """The gate's answer for the counts of one window under thresholds `t`."""
    reasons: list[str] = []
    routes: list[RouteGate] = []
    seen = {k: c for k, c in stats.routes.items() if c.compared or c.shadow_errors or c.raced}
    compared = sum(c.compared for c in seen.values())
    mismatches = sum(c.mismatches for c in seen.values())
    errors = sum(c.shadow_errors for c in seen.values())
    raced = sum(c.raced for c in seen.values())
    if compared == 0:
        reasons.append("no evidence yet: no compared exchanges in this window")
    for key in sorted(seen):
        c = seen[key]
        bound = wilson_upper(c.mismatches, c.compared)
        needed = compared_needed(c.mismatches, c.compared, t.max_mismatch_rate, t.min_compared)
        routes.append(RouteGate(key, c.compared, c.mismatches, c.shadow_errors, bound, needed,
                                c.raced))
        share = c.raced / (c.compared + c.raced) if c.raced else 0.0
        if share > t.max_raced_share:
            reasons.append(
                f"{key}: {c.raced} of {c.compared + c.raced} exchanges raced writes "
                f"(unverified), {pct(share)} > {pct(t.max_raced_share)}")
        if needed:
            relation = ">=" if bound >= t.max_mismatch_rate else "<"
            reasons.append(
                f"{key}: {c.compared} of {c.compared + needed} compared exchanges, {c.mismatches} "
                f"mismatches, upper bound {pct(bound)} {relation} {pct(t.max_mismatch_rate)}")
    for expected in t.expected_routes:
        if not _seen(expected, seen):
            needed = compared_needed(0, 0, t.max_mismatch_rate, t.min_compared)
            routes.append(RouteGate(expected, 0, 0, 0, 1.0, needed))
            reasons.append(f"{expected}: never exercised (0 of {needed} compared exchanges)")
    unresolved = {k: c.row_mismatches for k, c in stats.routes.items() if c.row_mismatches}
    rows = sum(unresolved.values())
    if rows:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(unresolved.items()))
        reasons.append(f"{rows} unresolved row mismatches ({detail})")
    if stats.diverged:
        reasons.append("the shadow is diverged: its rows cannot match until it is resynced")
    rate = errors / (compared + errors) if compared + errors else 0.0
    if errors and rate >= t.max_shadow_error_rate:
        reasons.append(f"shadow error rate {pct(rate)} ({errors} of {compared + errors}) "
                       f">= {pct(t.max_shadow_error_rate)}")
    return GateResult(not reasons, tuple(reasons), tuple(routes), compared, mismatches, errors,
                      rate, rows, stats.diverged, stats.since, t, raced=raced)


def evaluate_with_findings(stats: GateStats, t: Thresholds,
                           excused: Mapping[str, tuple[int, int]],
                           counted: Sequence[dict[str, Any]],
                           uncounted: Sequence[dict[str, Any]]) -> GateResult:
    """`evaluate` after taking off each route the mismatching exchanges (and of them,
    those with row differences) explained only by findings that do not block (`excused`:
    route -> (exchanges, row exchanges)); the answer names the findings it `counted` and
    those it did not, each with why."""
    adjusted = GateStats(stats.since)
    adjusted.diverged = stats.diverged
    for key, c in stats.routes.items():
        gone, rows = excused.get(key, (0, 0))
        adjusted.routes[key] = RouteCounts(c.compared, max(0, c.mismatches - gone),
                                           c.shadow_errors, max(0, c.row_mismatches - rows),
                                           c.raced)
    return replace(evaluate(adjusted, t), counted=tuple(counted), uncounted=tuple(uncounted))
