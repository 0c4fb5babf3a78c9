"""Values drawn fresh for every reply, learnt from the traffic itself; pure, no I/O.

A CSRF token, a random error id or a request id is drawn anew for each reply by both
builds, so the primary's and the shadow's values at that place differ in every comparison.
A/A calibration (shadow.compare.noise) finds such places only by sending a request twice,
which it never does for a request that writes: an error reply that writes an audit row,
a token fetch followed by a log-in. `FreshValues` learns them from the comparisons that
already happen, without any second request, on evidence from the primary alone:

- **shape**: every primary value at the place is a string token of one stable shape
  (`Shape`: its length and alphabet: hex, base64url or token characters; no space, no
  `:`), and the shadow's value has that same shape; letters and digits both occur across
  the values, so digit-only ids, counters and plain words never qualify;
- **randomness**: the character-class pattern of the values (`user_0042` is four
  letters, `_`, four digits: the same pattern every time) varies, so structured values such as
  `order-2026-0042` never qualify;
- **never repeats**: no primary value at the place is ever seen twice (a value stable for
  some input, or one that changed once and then stayed, repeats);
- **fresh for the same input, or the app's convention**: at least `MIN_REFRESHED` times
  the same request (method, target, body, and the caller's Cookie and Authorization) got a
  *different* primary value, and never the same one: a value derived from the input (a
  hash of an id, of a user) is the same for the same input, and a value for inputs that
  never repeat proves nothing by itself. Or the place carried such values on at least
  `MIN_ROUTES` routes: a field of one shape at one path on unrelated routes, never twice
  the same, is set by the app's envelope (an error id, a request id), not derived from
  one route's input; error replies are rare on any one route and seldom repeat a request.

Evidence is pooled per place (folded, as `shown` gives it) across routes: an error
envelope's `$.error_id` is rare on any one route and common across them, and it is the
app's convention, not a route's. Any contradiction, on any route, refuses the place
everywhere for good (`refused` says why): pooling makes learning faster, never looser.
A learnt place hides a difference only where the evidence came from: a reply of a status
class it was seen in before (`2xx`, `4xx`, ...: the first value in a new class is still a
mismatch), at exactly that path, and only when both values
have its shape, so a candidate that drops the value, returns null or another format is
still caught. Until `min_seen` observations (cold start) its differences stay mismatches.

Only fingerprints (keyed with a key drawn per process, never kept) and shapes are held;
no value from the traffic is stored. After a restart the counts, the shape and the decision
survive, the fingerprints do not: repeats are watched again from then on.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shadow.verdict import Difference, Kind, signature_path

ANY_ROUTE = "*"
"""The route under which places learnt across routes are listed and decided."""
HOW = "fresh"
"""How such a place was learnt, as listed (A/A places say "a/a")."""
LEARNT, ACCEPTED, REJECTED = "learnt", "accepted", "rejected"
"""The states of a learnt place (A/A's too): hiding until decided, kept, compared again."""
HIDE, KEEP = "hide", "keep"
"""What a difference held for its place's evidence becomes: hidden as noise, or kept."""
MIN_REFRESHED, MIN_ROUTES = 2, 3
MIN_LENGTH, MAX_LENGTH = 8, 512
_KEPT = 4096
"""Fingerprints of values (and of inputs) kept per place, the oldest forgotten first."""
_PATTERNS = 64
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
_B64URL = frozenset(string.ascii_letters + string.digits + "-_")
_HEX_LOWER, _HEX_UPPER = frozenset("0123456789abcdef"), frozenset("0123456789ABCDEF")
_DATE = re.compile(r"\d{4}-\d\d-\d\d|\d{8}T\d{4}")


@dataclass(frozen=True, slots=True)
class Shape:
    """The stable form of a token: its length and alphabet (`hex`, `base64url`, `token`)."""

    length: int
    alphabet: str

    def __str__(self) -> str:
        return f"{self.length} {self.alphabet} characters"


def shape_of(value: Any) -> Shape | None:
    """The token shape of `value`, or None when it cannot be a random token (not a string,
    too short or long, a space, a `:` or a date in it)."""
    if not isinstance(value, str) or not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        return None
    if not _TOKEN.fullmatch(value) or _DATE.search(value):
        return None
    chars = set(value)
    if chars <= _HEX_LOWER or chars <= _HEX_UPPER:
        return Shape(len(value), "hex")
    return Shape(len(value), "base64url" if chars <= _B64URL else "token")


def _pattern(value: str) -> str:
    """The class of each character: `user_0042` -> `aaaa_9999`."""
    return "".join("a" if ch.islower() else "A" if ch.isupper() else "9" if ch.isdigit()
                   else ch for ch in value)


@dataclass(slots=True)
class FreshPlace:
    """One place whose primary values looked fresh per reply: its evidence and state.
    `seen` observations, `refreshed` of them the same input with another value, in
    `routes` and status `classes`; `hidden` differences hidden since."""

    path: str
    shape: Shape
    seen: int = 0
    refreshed: int = 0
    patterns: int = 0
    letters: bool = False
    digits: bool = False
    routes: set[str] = field(default_factory=set)
    classes: dict[str, int] = field(default_factory=dict)
    refused: str = ""
    state: str = LEARNT
    hidden: int = 0
    values: dict[bytes, None] = field(default_factory=dict)
    inputs: dict[bytes, bytes] = field(default_factory=dict)
    patterns_seen: set[str] = field(default_factory=set)

    kind = str(Kind.BODY)

    @property
    def varied(self) -> int:
        return self.seen


class FreshValues:
    """Places fresh in every reply, learnt from compared pairs (see the module text)."""

    def __init__(self, *, min_seen: int = 5, max_places: int = 200,
                 shown: Callable[[Difference], str] = lambda d: d.path,
                 key: bytes | None = None) -> None:
        self.min_seen = min_seen
        self.max_places = max_places
        self.shown = shown
        self._key = key if key is not None else os.urandom(16)
        self.places: dict[str, FreshPlace] = {}
        self.touched: set[str] = set()
        """Places whose evidence or state changed since the owner last emptied it."""

    def _fp(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=12).digest()

    def observe(self, route: str, status: int, differences: Iterable[Difference],
                request: Callable[[], bytes]) -> None:
        """One compared pair of `route` whose primary answered `status`: its reply
        differences; `request()` the bytes that identify its input."""
        asked: bytes | None = None
        for d in differences:
            if d.kind is not Kind.BODY or not isinstance(d.primary, str):
                continue
            path = signature_path(self.shown(d))
            place = self.places.get(path)
            shape = shape_of(d.primary)
            if place is None:
                if (shape is None or shape_of(d.shadow) != shape
                        or len(self.places) >= self.max_places):
                    continue
                place = self.places[path] = FreshPlace(path, shape)
            if place.refused:
                continue
            self.touched.add(path)
            if shape != place.shape:
                place.refused = f"a value of another shape than {place.shape}"
                continue
            if shape_of(d.shadow) != shape:
                continue  # the shadow's own difference: no evidence, never hidden
            asked = asked if asked is not None else self._fp(request())
            self._count(place, route, status, d.primary, asked)

    def _count(self, place: FreshPlace, route: str, status: int, value: str,
               asked: bytes) -> None:
        mark = self._fp(value.encode())
        if mark in place.values:
            place.refused = "a value was seen twice"
            return
        before = place.inputs.get(asked)
        if before is not None:
            place.refreshed += 1
        _remember(place.values, mark, None)
        _remember(place.inputs, asked, mark)
        pattern = _pattern(value)
        if len(place.patterns_seen) < _PATTERNS and pattern not in place.patterns_seen:
            place.patterns_seen.add(pattern)
            place.patterns += 1
        place.letters = place.letters or any(ch.isalpha() for ch in value)
        place.digits = place.digits or any(ch.isdigit() for ch in value)
        place.seen += 1
        status_class = f"{status // 100}xx"
        place.classes[status_class] = place.classes.get(status_class, 0) + 1
        if len(place.routes) < 50:
            place.routes.add(route)

    def learnt(self, place: FreshPlace) -> bool:
        """Whether the evidence for `place` is complete (see the module text)."""
        return (not place.refused and place.seen >= self.min_seen
                and (place.refreshed >= MIN_REFRESHED or len(place.routes) >= MIN_ROUTES)
                and place.letters and place.digits
                and place.patterns * 2 >= min(place.seen, _PATTERNS))

    def hiding(self, place: FreshPlace) -> bool:
        """Whether `place` hides differences now: accepted, or learnt and not rejected."""
        return place.state == ACCEPTED or (place.state == LEARNT and self.learnt(place))

    def hides(self, d: Difference, status: int) -> bool:
        """Whether difference `d` of a reply with `status` is at a hiding place, with
        both values of its shape; counts it as hidden when it is."""
        if d.kind is not Kind.BODY or not self.places:
            return False
        place = self.places.get(signature_path(self.shown(d)))
        if (place is None or not self.hiding(place)
                or place.classes.get(f"{status // 100}xx", 0) < 2
                or shape_of(d.primary) != place.shape or shape_of(d.shadow) != place.shape):
            return False
        place.hidden += 1
        return True

    def waits(self, d: Difference, status: int) -> str | None:
        """The place `d` (of a reply with `status`) waits on, when it is a difference the
        place does not hide yet only for want of evidence: the place is still gathering
        (or has not seen this status class twice), nothing refused or rejected it, and
        both values have its shape. None for any other difference."""
        if d.kind is not Kind.BODY or not self.places:
            return None
        path = signature_path(self.shown(d))
        place = self.places.get(path)
        if (place is None or place.refused or place.state == REJECTED
                or shape_of(d.primary) != place.shape or shape_of(d.shadow) != place.shape):
            return None
        if self.hiding(place) and place.classes.get(f"{status // 100}xx", 0) >= 2:
            return None
        return path

    def decision(self, path: str, status: int) -> str | None:
        """What a difference held at `path` (see `waits`) of a reply with `status` is now:
        HIDE (the place hides it now), KEEP (refused, rejected or forgotten: a mismatch) or
        None (still gathering). Counts nothing."""
        place = self.places.get(path)
        if place is None or place.refused or place.state == REJECTED:
            return KEEP
        if self.hiding(place) and place.classes.get(f"{status // 100}xx", 0) >= 2:
            return HIDE
        return None

    def count_hidden(self, path: str) -> None:
        """One held difference at `path` was hidden when its verdict was settled."""
        place = self.places.get(path)
        if place is not None:
            place.hidden += 1

    def pending(self) -> int:
        return sum(1 for p in self.places.values() if p.state == LEARNT and self.hiding(p))

    def listing(self) -> list[dict[str, Any]]:
        """Each place with its evidence, for API, CLI and browser."""
        return [{"path": p.path, "kind": p.kind, "how": HOW, "varied": p.seen,
                 "share": 1.0, "state": p.state, "hiding": self.hiding(p),
                 "hidden": p.hidden, "shape": str(p.shape), "refreshed": p.refreshed,
                 "routes": sorted(p.routes), "classes": dict(sorted(p.classes.items())),
                 "refused": p.refused, "evidence": self.evidence(p)}
                for p in sorted(self.places.values(), key=lambda p: p.path)]

    def evidence(self, p: FreshPlace) -> str:
        """The evidence for `p` in words."""
        if p.refused:
            return f"refused: {p.refused}"
        text = (f"{p.seen} primary values of {p.shape}, none seen twice, {p.refreshed} "
                f"times a new one for the same request, on {len(p.routes)} route(s), "
                f"{'/'.join(sorted(p.classes))} replies")
        if self.learnt(p):
            return text
        missing = []
        if p.seen < self.min_seen:
            missing.append(f"{self.min_seen} values")
        if p.refreshed < MIN_REFRESHED and len(p.routes) < MIN_ROUTES:
            missing.append(f"{MIN_REFRESHED} new values for a repeated request, or values "
                           f"on {MIN_ROUTES} routes")
        if not (p.letters and p.digits):
            missing.append("both letters and digits")
        if p.patterns * 2 < min(p.seen, _PATTERNS):
            missing.append("varied character patterns")
        return f"{text}; still needs {', '.join(missing)}"

    def decide(self, path: str, state: str) -> FreshPlace:
        """Accept or reject one place; raises KeyError when there is none at `path`."""
        place = self.places[path]
        place.state = state
        self.touched.add(path)
        return place

    def saved(self) -> dict[str, Any]:
        return {"places": [
            [p.path, p.shape.length, p.shape.alphabet, p.seen, p.refreshed, p.patterns,
             p.letters, p.digits, sorted(p.routes), dict(p.classes), p.refused, p.state,
             p.hidden] for p in self.places.values()]}

    def load(self, saved: dict[str, Any] | None) -> None:
        for row in (saved or {}).get("places", []):
            (path, length, alphabet, seen, refreshed, patterns, letters, digits, routes,
             classes, refused, state, hidden) = row
            self.places[path] = FreshPlace(
                path, Shape(int(length), str(alphabet)), int(seen), int(refreshed),
                int(patterns), bool(letters), bool(digits), set(routes),
                {str(k): int(v) for k, v in dict(classes).items()},
                str(refused), state if state in (LEARNT, ACCEPTED, REJECTED) else LEARNT,
                int(hidden))


def _remember(kept: dict, key: bytes, value: Any) -> None:
    kept[key] = value
    if len(kept) > _KEPT:
        del kept[next(iter(kept))]


def request_key(method: str, target: str, body: bytes,
                headers: Iterable[tuple[str, str]]) -> bytes:
    """The bytes that identify one request's input: method, target, body and the
    caller's credentials (Cookie, Authorization), so a value derived from the caller is
    never taken for one drawn fresh."""
    creds = sorted((k.lower(), v) for k, v in headers
                   if k.lower() in ("cookie", "authorization"))
    parts = [method.encode(), target.encode(), body,
             *(f"{k}:{v}".encode() for k, v in creds)]
    return b"\0".join(hashlib.sha256(p).digest() for p in parts)
