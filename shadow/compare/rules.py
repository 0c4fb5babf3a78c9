"""The rules that say how two replies are compared, compiled once at start-up.

`build_rules` takes the values as they appear in the config (strings, numbers, pairs)
and returns a `ReplyRules`, or raises `RulesError` listing every problem with its
location (`ignore_paths[2]: bad JSON path ...`), so config validation can report them all
at once. Nothing in a `ReplyRules` is parsed again per exchange.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from shadow.compare.jsonpath import Pattern, PatternSet, compile_pattern

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


class RulesError(ValueError):
    """Compare rules that cannot be compiled. `problems` lists each one with its
    location; the message joins them."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Scrubber:
    """A regex replaced in textual bodies before they are compared (CSRF tokens, nonces,
    rendered timestamps in HTML)."""

    pattern: re.Pattern[str]
    replacement: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)


@dataclass(frozen=True)
class BridgeRules:
    """Opt-in reply normalisations for the renderings SQLite and PostgreSQL builds differ
    in. All off by default: each one hides a difference a client could see."""

    bool_int: bool = False
    """`true`/`false` equal `1`/`0`."""
    timestamps: bool = False
    """Two timestamp strings naming the same instant are equal
    (`'2026-02-04 15:47:20'` == `'2026-02-04T15:47:20+00:00'`; naive means UTC)."""
    numeric_strings: bool = False
    """A numeric string equals the number it spells (`"4.5"` == `4.5`)."""
    empty_null: bool = False
    """`""` equals `null`."""


@dataclass(frozen=True)
class ReplyRules:
    """How two replies are compared.

    `headers`: lower-case names of the headers compared (all others are ignored).
    `ignore_paths`: body parts never compared. `unordered_paths`: arrays compared as
    multisets. `numeric_tolerance`: the absolute difference still called equal between
    two numbers. `time_tolerance`: the same in seconds between two strings that parse as
    timestamps. `replay_lag`: how many seconds after the primary the shadow has lately
    served exchanges; a shadow timestamp up to that much later than the primary's (each
    build stamps its own "now") names the same moment. `scrubbers`: applied to textual (non-JSON) bodies. `bridge`: opt-in
    dialect normalisations.
    """

    headers: tuple[str, ...] = ("content-type",)
    ignore_paths: tuple[Pattern, ...] = ()
    unordered_paths: tuple[Pattern, ...] = ()
    numeric_tolerance: float = 0.0
    time_tolerance: float = 0.0
    replay_lag: float = 0.0
    scrubbers: tuple[Scrubber, ...] = ()
    bridge: BridgeRules = BridgeRules()
    ignore_set: PatternSet = field(init=False, repr=False, compare=False)
    unordered_set: PatternSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore_set", PatternSet(self.ignore_paths))
        object.__setattr__(self, "unordered_set", PatternSet(self.unordered_paths))

    @property
    def ignores_body(self) -> bool:
        """True when an ignore pattern selects the whole body (`$`)."""
        return self.ignore_set.accepts(self.ignore_set.initial)

    def at_lag(self, seconds: float) -> ReplyRules:
        """These rules for a shadow that lately served exchanges `seconds` after the primary."""
        return self if seconds == self.replay_lag else replace(self, replay_lag=seconds)

    def with_overrides(
        self,
        *,
        ignore_paths: Iterable[Pattern | str] = (),
        unordered_paths: Iterable[Pattern | str] = (),
    ) -> ReplyRules:
        """These rules with route-level patterns added to the global ones. Strings are
        compiled (ValueError if one is bad); prefer compiling them at start-up."""
        extra_ignore = tuple(_compiled(p) for p in ignore_paths)
        extra_unordered = tuple(_compiled(p) for p in unordered_paths)
        if not extra_ignore and not extra_unordered:
            return self
        return replace(
            self,
            ignore_paths=_merged(self.ignore_paths, extra_ignore),
            unordered_paths=_merged(self.unordered_paths, extra_unordered),
        )


def build_rules(
    *,
    headers: Iterable[str] = ("content-type",),
    ignore_paths: Iterable[str] = (),
    unordered_paths: Iterable[str] = (),
    numeric_tolerance: float = 0.0,
    time_tolerance: float = 0.0,
    scrubbers: Iterable[tuple[str, str]] = (),
    bridge: BridgeRules = BridgeRules(),
) -> ReplyRules:
    """Compile config values into `ReplyRules`.

    Raises RulesError (a ValueError) listing every problem found, each prefixed with
    the name of the setting and the position in it: `scrubbers[1]: ...`.
    """
    problems: list[str] = []
    names = _header_names(headers, problems)
    ignore = _patterns("ignore_paths", ignore_paths, problems)
    unordered = _patterns("unordered_paths", unordered_paths, problems)
    num_tol = _tolerance("numeric_tolerance", numeric_tolerance, problems)
    time_tol = _tolerance("time_tolerance", time_tolerance, problems)
    scrub = _scrubbers(scrubbers, problems)
    if not isinstance(bridge, BridgeRules):
        problems.append(f"bridge: expected BridgeRules, got {type(bridge).__name__}")
    if problems:
        raise RulesError(problems)
    return ReplyRules(
        headers=names,
        ignore_paths=ignore,
        unordered_paths=unordered,
        numeric_tolerance=num_tol,
        time_tolerance=time_tol,
        scrubbers=scrub,
        bridge=bridge,
    )


def _compiled(pattern: Pattern | str) -> Pattern:
    return pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)


def _merged(base: tuple[Pattern, ...], extra: tuple[Pattern, ...]) -> tuple[Pattern, ...]:
    out = list(base)
    for pattern in extra:
        if all(p.text != pattern.text for p in out):
            out.append(pattern)
    return tuple(out)


def _header_names(headers: Iterable[str], problems: list[str]) -> tuple[str, ...]:
    if isinstance(headers, str):
        problems.append("headers: expected a list of header names, got a string")
        return ()
    names: list[str] = []
    for n, name in enumerate(headers):
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            problems.append(f"headers[{n}]: not a header name: {name!r}")
        elif name.lower() not in names:
            names.append(name.lower())
    return tuple(names)


def _patterns(setting: str, texts: Iterable[str], problems: list[str]) -> tuple[Pattern, ...]:
    if isinstance(texts, str):
        problems.append(f"{setting}: expected a list of JSON paths, got a string")
        return ()
    out: list[Pattern] = []
    for n, text in enumerate(texts):
        try:
            pattern = compile_pattern(text)
        except ValueError as exc:
            problems.append(f"{setting}[{n}]: {exc}")
            continue
        if all(p.text != pattern.text for p in out):
            out.append(pattern)
    return tuple(out)


def _tolerance(setting: str, value: float, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        problems.append(f"{setting}: expected a finite number >= 0, got {value!r}")
        return 0.0
    return float(value)


def _scrubbers(pairs: Iterable[tuple[str, str]], problems: list[str]) -> tuple[Scrubber, ...]:
    out: list[Scrubber] = []
    for n, pair in enumerate(pairs):
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            problems.append(f"scrubbers[{n}]: expected a (pattern, replacement) pair of strings, got {pair!r}")
            continue
        source, replacement = pair
        try:
            pattern = re.compile(source)
        except re.error as exc:
            problems.append(f"scrubbers[{n}]: bad regex {source!r}: {exc}")
            continue
        try:
            pattern.sub(replacement, "")
        except (re.error, IndexError) as exc:
            problems.append(f"scrubbers[{n}]: bad replacement {replacement!r}: {exc}")
            continue
        out.append(Scrubber(pattern, replacement))
    return tuple(out)
