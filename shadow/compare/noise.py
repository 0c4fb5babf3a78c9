"""Noise learnt from the primary's own build (A/A calibration); pure, no I/O.

Some of a reply changes every time it is served: a fresh CSRF token, a random error id,
a request counter. Sent twice to the *same* build, a safe request shows exactly those
places; whatever differs there between the primary and the shadow is no evidence about
the migration. `NoiseModel` keeps, per route (`METHOD /template`), how many such A/A
pairs were seen and how often each place (a folded difference path: `$.csrf_token`,
`$.items[*].seen_at`, a header name) varied in them.

A place that varied is *learnt*; once it varied in at least half of the route's pairs
(`MIN_SHARE`: a token or a counter varies in all of them, the mark of a write that
happened between two probes in few) it hides differences at itself and below it,
counted as noise, not dropped silently. The operator confirms it (*accepted*) or refuses it
(*rejected*: compared again, whatever the calibration says; a place rejected on a route
is compared there even where values drawn fresh per reply are learnt at it, see
shadow.compare.fresh, which learns without a second request and is listed under the
route `*`). Only what the primary's
build does by itself is ever learnt, so a difference the primary never produces alone is
never hidden. Status changes are never learnt: a route whose status varies between two
identical requests is listed as unstable instead.

Places are stored, listed and decided as `shown` gives a difference's path (in the proxy,
shadow.privacy: a key that is itself a value, such as a session id used as a key, is a
fingerprint), so learnt noise never holds a value from the traffic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shadow.compare.fresh import (
    ACCEPTED, ANY_ROUTE, KEEP, LEARNT, REJECTED, FreshPlace, FreshValues,
)
from shadow.verdict import Difference, Kind, signature_path

META = "noise"
"""The state store's meta key for what was learnt (kept across restarts)."""
STATES = (LEARNT, ACCEPTED, REJECTED)
_LEARNABLE = frozenset({Kind.BODY, Kind.HEADER})
MIN_SHARE = 0.5
_STEP = re.compile(r"(?:\.[^.\[]+|\[[^\]]*\])$")


def ancestors(path: str) -> list[str]:
    """`path` and every path above it: `$.a[*].b` -> [`$.a[*].b`, `$.a[*]`, `$.a`, `$`]."""
    found = [path]
    while True:
        shorter = _STEP.sub("", path, count=1)
        if shorter == path or not shorter:
            return found
        found.append(shorter)
        path = shorter


@dataclass(slots=True)
class NoisyPlace:
    """One place of one route that varied between two replies of the same build:
    `varied` in how many A/A pairs, `hidden` how many differences it has hidden since."""

    path: str
    kind: str
    varied: int = 0
    state: str = LEARNT
    hidden: int = 0

    @property
    def hides(self) -> bool:
        return self.state != REJECTED


@dataclass(slots=True)
class RouteNoise:
    pairs: int = 0
    unstable_status: int = 0
    places: dict[str, NoisyPlace] = field(default_factory=dict)


class NoiseModel:
    """What varies by itself, per route; `min_pairs` A/A pairs end a route's calibration.
    `fresh` holds the places learnt without a second request, from values the primary
    draws fresh for every reply (shadow.compare.fresh), listed under the route `*`;
    None when that learning is off."""

    def __init__(self, *, min_pairs: int = 5, max_places: int = 200,
                 shown: Callable[[Difference], str] = lambda d: d.path,
                 min_fresh: int | None = 5) -> None:
        self.min_pairs = min_pairs
        self.max_places = max_places
        self.shown = shown
        self._routes: dict[str, RouteNoise] = {}
        self.fresh = (FreshValues(min_seen=min_fresh, max_places=max_places, shown=shown)
                      if min_fresh is not None else None)

    def observe_compared(self, route: str, status: int, differences: Iterable[Difference],
                         request: Callable[[], bytes]) -> None:
        """One compared pair of `route` (`status`: the primary's) and its reply
        differences, as evidence of values drawn fresh per reply; `request()` gives the
        bytes that identify its input (shadow.compare.fresh.request_key)."""
        if self.fresh is not None:
            self.fresh.observe(route, status, differences, request)

    def observe(self, route: str, differences: Iterable[Difference]) -> None:
        """One A/A pair of `route` and the differences between its two replies."""
        noise = self._routes.setdefault(route, RouteNoise())
        noise.pairs += 1
        seen = set()
        for d in differences:
            if d.kind is Kind.STATUS:
                noise.unstable_status += 1
                continue
            if d.kind not in _LEARNABLE:
                continue
            path = signature_path(self.shown(d))
            if path in seen:
                continue
            seen.add(path)
            place = noise.places.get(path)
            if place is None:
                if len(noise.places) >= self.max_places:
                    continue
                place = noise.places[path] = NoisyPlace(path, str(d.kind))
            place.varied += 1

    def calibrating(self, route: str) -> bool:
        """True until `min_pairs` A/A pairs of `route` have been seen."""
        noise = self._routes.get(route)
        return noise is None or noise.pairs < self.min_pairs

    def _hiding(self, noise: RouteNoise, place: NoisyPlace) -> bool:
        """Whether `place` hides differences now: accepted, or learnt, its route past
        calibration, and varied in at least `MIN_SHARE` of the route's pairs."""
        return place.state == ACCEPTED or (
            place.hides and noise.pairs >= self.min_pairs
            and place.varied >= noise.pairs * MIN_SHARE)

    def split(self, route: str, differences: tuple[Difference, ...],
              status: int = 200) -> tuple[tuple[Difference, ...], int]:
        """(differences kept, how many were noise) for one comparison of `route` whose
        primary answered `status`."""
        if not differences:
            return differences, 0
        kept = self._split_pairs(route, differences)
        if self.fresh is not None and self.fresh.places:
            kept = tuple(d for d in kept if self._rejected(route, signature_path(self.shown(d)))
                         or not self.fresh.hides(d, status))
        return kept, len(differences) - len(kept)

    def waiting(self, route: str, differences: tuple[Difference, ...],
                status: int = 200) -> tuple[str, ...] | None:
        """The fresh places (one per difference) that the differences of one comparison of
        `route` wait on, when every one of them waits for its place's evidence
        (shadow.compare.fresh `waits`); None when any does not, or there are none."""
        if not differences or self.fresh is None:
            return None
        places = []
        for d in differences:
            path = self.fresh.waits(d, status)
            if path is None or self._rejected(route, path):
                return None
            places.append(path)
        return tuple(places)

    def decision(self, route: str, path: str, status: int) -> str | None:
        """What a held difference at fresh place `path` is now (shadow.compare.fresh
        `decision`); a place rejected on `route` keeps it."""
        if self.fresh is None or self._rejected(route, path):
            return KEEP
        return self.fresh.decision(path, status)

    def _rejected(self, route: str, path: str) -> bool:
        noise = self._routes.get(route)
        return noise is not None and any(
            noise.places[a].state == REJECTED for a in ancestors(path) if a in noise.places)

    def _split_pairs(self, route: str,
                     differences: tuple[Difference, ...]) -> tuple[Difference, ...]:
        """The differences that no place learnt from the route's A/A pairs hides."""
        noise = self._routes.get(route)
        if noise is None:
            return differences
        hiding = {p: place for p, place in noise.places.items() if self._hiding(noise, place)}
        if not hiding:
            return differences
        kept = []
        for d in differences:
            place = None
            if d.kind in _LEARNABLE:
                place = next((hiding[a] for a in ancestors(signature_path(self.shown(d)))
                              if a in hiding), None)
            if place is None:
                kept.append(d)
            else:
                place.hidden += 1
        return tuple(kept)

    def decide(self, route: str, path: str, state: str) -> NoisyPlace | FreshPlace:
        """Accept or reject one learnt place (route `*`: one learnt from fresh values);
        raises KeyError when it was never learnt."""
        if state not in (ACCEPTED, REJECTED):
            raise ValueError(f"state must be {ACCEPTED!r} or {REJECTED!r}: {state!r}")
        if route == ANY_ROUTE:
            if self.fresh is None:
                raise KeyError(path)
            return self.fresh.decide(path, state)
        place = self._routes[route].places[path]
        place.state = state
        if self.fresh is not None:  # held differences below it are decided too
            self.fresh.touched.update(p for p in self.fresh.places if path in ancestors(p))
        return place

    def pending(self) -> int:
        """Learnt places that hide differences and wait for the operator's word."""
        return sum(1 for n in self._routes.values() for p in n.places.values()
                   if p.state == LEARNT and self._hiding(n, p)) + (
            self.fresh.pending() if self.fresh is not None else 0)

    def listing(self) -> list[dict[str, Any]]:
        """Every route with its calibration state and learnt places, for API, CLI and
        browser: how often each place varied, whether it hides differences now and how
        many it has hidden. The route `*`, when present, lists the places learnt from
        fresh values (`how`: "fresh"; `varied`: primary values seen), with their evidence."""
        out = []
        for route, noise in sorted(self._routes.items()):
            out.append({
                "route": route, "how": "a/a", "pairs": noise.pairs,
                "calibrating": noise.pairs < self.min_pairs,
                "unstable_status": noise.unstable_status,
                "places": [{"path": p.path, "kind": p.kind, "how": "a/a", "varied": p.varied,
                            "share": round(p.varied / noise.pairs, 3), "state": p.state,
                            "hiding": self._hiding(noise, p), "hidden": p.hidden}
                           for p in sorted(noise.places.values(), key=lambda p: p.path)],
            })
        if self.fresh is not None and self.fresh.places:
            places = self.fresh.listing()
            out.append({"route": ANY_ROUTE, "how": "fresh", "pairs": 0,
                        "calibrating": not any(p["hiding"] for p in places),
                        "unstable_status": 0, "places": places})
        return out

    def saved(self) -> dict[str, Any]:
        """What the state store keeps across restarts."""
        saved = {route: {"pairs": n.pairs, "unstable_status": n.unstable_status,
                         "places": [[p.path, p.kind, p.varied, p.state, p.hidden]
                                    for p in n.places.values()]}
                 for route, n in self._routes.items()}
        if self.fresh is not None and self.fresh.places:
            saved[ANY_ROUTE] = self.fresh.saved()
        return saved

    def load(self, saved: dict[str, Any] | None) -> None:
        for route, data in (saved or {}).items():
            if route == ANY_ROUTE:
                if self.fresh is not None:
                    self.fresh.load(data)
                continue
            places = {}
            for path, kind, varied, state, *hidden in data.get("places", []):
                places[path] = NoisyPlace(path, kind, varied,
                                          state if state in STATES else LEARNT,
                                          int(hidden[0]) if hidden else 0)
            self._routes[route] = RouteNoise(int(data.get("pairs", 0)),
                                             int(data.get("unstable_status", 0)), places)
