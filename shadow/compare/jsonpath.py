"""The small JSON-path subset used in compare rules and in Difference paths.

A *path* is a tuple of steps into a JSON document: a `str` step is an object key, an `int`
step an array index. It renders as `$`, `$.key`, `$['odd key']`, `$.items[3].score`.

A *pattern* selects paths. Besides concrete steps it may use

    [*]      any array index
    .*       any object key
    ..key    `key` at any depth below this point (also `..*`, `..[*]`, `..['odd key']`)

Patterns are compiled once (`compile_pattern`); matching a path is a short loop over
pre-parsed steps. `PatternSet` runs several patterns step by step while a document is
walked, so a walker can tell at each node whether any pattern can still match below it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Path = tuple[str | int, ...]

KEY, INDEX, ANY_KEY, ANY_INDEX = "key", "index", "any_key", "any_index"

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME = re.compile(r"[\w-]+")
_DIGITS = re.compile(r"\d+")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a pattern: what it accepts (`kind`, `value`) and whether it may be
    preceded by any number of other steps (`deep`, written `..`)."""

    kind: str
    value: str | int | None = None
    deep: bool = False

    def accepts(self, step: str | int) -> bool:
        """True when this pattern step accepts the path step `step`."""
        if type(step) is str:
            return self.kind == ANY_KEY or (self.kind == KEY and step == self.value)
        return self.kind == ANY_INDEX or (self.kind == INDEX and step == self.value)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled path pattern. `text` is the pattern as written in the config."""

    text: str
    steps: tuple[Step, ...] = field(repr=False)

    def __str__(self) -> str:
        return self.text

    @property
    def concrete(self) -> bool:
        """True when the pattern names exactly one path (no wildcard, no `..`)."""
        return all(s.kind in (KEY, INDEX) and not s.deep for s in self.steps)

    def matches(self, path: Sequence[str | int]) -> bool:
        """True when `path` is one of the paths this pattern selects (the whole path, not
        a prefix of it)."""
        steps = self.steps
        if not any(s.deep for s in steps):
            if len(path) != len(steps):
                return False
            for step, elem in zip(steps, path):
                if not step.accepts(elem):
                    return False
            return True
        states = {0}
        last = len(steps)
        for elem in path:
            nxt: set[int] = set()
            for i in states:
                if i == last:
                    continue
                step = steps[i]
                if step.deep:
                    nxt.add(i)
                if step.accepts(elem):
                    nxt.add(i + 1)
            if not nxt:
                return False
            states = nxt
        return last in states


class PatternSet:
    """Several patterns matched together, one path step at a time.

    A *state* is a tuple of (pattern number, steps matched) pairs. Start from `initial`,
    feed each step of a path to `step`, and ask `accepts(state)` whether the path so far
    is selected. An empty state means no pattern can match anywhere below: a walker can
    stop descending there.
    """

    __slots__ = ("patterns", "initial", "_steps", "_ends")

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns = tuple(patterns)
        self._steps = tuple(p.steps for p in self.patterns)
        self._ends = tuple(len(s) for s in self._steps)
        self.initial: tuple[tuple[int, int], ...] = tuple((n, 0) for n in range(len(self.patterns)))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def step(self, state: tuple[tuple[int, int], ...], elem: str | int) -> tuple[tuple[int, int], ...]:
        """The state after one more path step `elem`."""
        out: list[tuple[int, int]] = []
        for n, i in state:
            if i == self._ends[n]:
                continue
            step = self._steps[n][i]
            if step.deep:
                out.append((n, i))
            if step.accepts(elem):
                out.append((n, i + 1))
        if len(out) > 1:
            return tuple(dict.fromkeys(out))
        return tuple(out)

    def accepts(self, state: tuple[tuple[int, int], ...]) -> bool:
        """True when some pattern selects exactly the path that led to `state`."""
        ends = self._ends
        for n, i in state:
            if i == ends[n]:
                return True
        return False

    def matches(self, path: Sequence[str | int]) -> bool:
        """True when some pattern selects `path`."""
        state = self.initial
        for elem in path:
            state = self.step(state, elem)
            if not state:
                return False
        return self.accepts(state)


def render_path(path: Iterable[str | int]) -> str:
    """`('items', 3, 'score')` -> `$.items[3].score`; keys that are not plain identifiers
    are quoted: `$['odd key']`, `$['3']`."""
    parts = ["$"]
    for elem in path:
        if type(elem) is int:
            parts.append(f"[{elem}]")
        elif _PLAIN_KEY.match(elem):
            parts.append(f".{elem}")
        else:
            quoted = elem.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{quoted}']")
    return "".join(parts)


def compile_pattern(text: str) -> Pattern:
    """Compile a pattern such as `$.items[*].updated_at` or `$..request_id`.

    Raises ValueError naming the pattern, the position and what was expected there.
    """
    if not isinstance(text, str):
        raise ValueError(f"a JSON path must be a string, got {type(text).__name__}")
    return Pattern(text, tuple(_Parser(text).steps()))


def parse_path(text: str) -> Path:
    """The concrete path a rendered path names (`$.items[3]` -> `('items', 3)`).

    Raises ValueError when `text` is not a path or uses a wildcard or `..`.
    """
    pattern = compile_pattern(text)
    if not pattern.concrete:
        raise ValueError(f"bad JSON path {text!r}: wildcards and '..' select many paths")
    return tuple(s.value for s in pattern.steps)  # type: ignore[misc]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> ValueError:
        found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
        return ValueError(
            f"bad JSON path {self.text!r}: expected {expected} at position {self.pos}, found {found}"
        )

    def steps(self) -> list[Step]:
        text = self.text
        if not text.startswith("$"):
            raise self.fail("'$'")
        self.pos = 1
        steps: list[Step] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == "[":
                steps.append(self.bracket(deep=False))
            elif char == ".":
                deep = text.startswith("..", self.pos)
                self.pos += 2 if deep else 1
                steps.append(self.after_dot(deep))
            else:
                raise self.fail("'.' or '['")
        return steps

    def after_dot(self, deep: bool) -> Step:
        text = self.text
        if self.pos < len(text) and text[self.pos] == "*":
            self.pos += 1
            return Step(ANY_KEY, None, deep)
        if deep and self.pos < len(text) and text[self.pos] == "[":
            return self.bracket(deep=True)
        match = _NAME.match(text, self.pos)
        if not match:
            raise self.fail("a key name or '*'" + (" or '['" if deep else ""))
        self.pos = match.end()
        return Step(KEY, match.group(), deep)

    def bracket(self, deep: bool) -> Step:
        text = self.text
        self.pos += 1
        if self.pos >= len(text):
            raise self.fail("an index, '*' or a quoted key")
        char = text[self.pos]
        if char == "*":
            self.pos += 1
            step = Step(ANY_INDEX, None, deep)
        elif char in "'\"":
            step = Step(KEY, self.quoted(char), deep)
        elif char == "-":
            raise ValueError(f"bad JSON path {text!r}: negative index at position {self.pos} is not supported")
        else:
            match = _DIGITS.match(text, self.pos)
            if not match:
                raise self.fail("an index, '*' or a quoted key")
            self.pos = match.end()
            step = Step(INDEX, int(match.group()), deep)
        if self.pos >= len(text) or text[self.pos] != "]":
            raise self.fail("']'")
        self.pos += 1
        return step

    def quoted(self, quote: str) -> str:
        text = self.text
        self.pos += 1
        out: list[str] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\":
                self.pos += 1
                if self.pos >= len(text) or text[self.pos] not in _ESCAPES:
                    raise self.fail("one of \\\\ \\' \\\" after a backslash")
                char = _ESCAPES[text[self.pos]]
            out.append(char)
            self.pos += 1
        raise self.fail(f"a closing {quote}")
