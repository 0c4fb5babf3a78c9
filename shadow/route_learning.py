"""Route templates learned from traffic, for paths no configured template matches.

A template names a path by its fixed words and folds everything else into `{param}`:
`/api/users/jane@example.com/records` becomes `/api/users/{param}/records` whatever the
segment looks like (numeric ids, usernames, e-mails, tokens and slugs fold alike). A raw
value never becomes part of a template by looking like a word; only by being constant:

- Each path position (the literal segments before it) counts the distinct values seen there.
  A value becomes a literal of that position once `min_hits` requests carried it while the
  position held at most `max_literals` distinct values. A position that has seen more
  distinct values is variable: every segment there is `{param}`, and literals it had
  learned are forgotten (templates through them are retired) unless configured.
- Segments longer than `MAX_LITERAL_CHARS`, and segments that read as values rather than
  words (an e-mail, more than 3 digits, anything but an identifier: the rule
  shadow.privacy applies to JSON keys), are never literals and are not kept, however
  often one user requests the same one.
- A template is learned once it has been seen `repeats` times and fewer than
  `max_templates` are known; until then, and beyond the cap, the path is `{other}`.

Memory is bounded: a position keeps at most `max_literals + 1` candidate values, at most
`max_positions` positions exist, paths deeper than `MAX_DEPTH` segments are `{other}`, and
the path cache holds at most `CACHE_SIZE` short paths. In the steady state a request costs
one dict lookup (the cache) or one lookup per segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from shadow.privacy.shapes import is_name

OTHER = "{other}"
PARAM = "{param}"
MAX_LITERAL_CHARS = 64
MAX_DEPTH = 16
CACHE_SIZE = 4096
_MAX_CACHED_PATH = 256


class _Position:
    __slots__ = ("seen", "distinct", "literal", "param", "variable", "pinned")

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.distinct = 0
        self.literal: dict[str, _Position] = {}
        self.param: _Position | None = None
        self.variable = False
        self.pinned: set[str] = set()


@dataclass(frozen=True, slots=True)
class LearnedRoute:
    """One learned template and how many requests it named since it was learned."""

    template: str
    hits: int


class RouteLearner:
    """Names paths by learned templates. `name(path)` returns a template or `OTHER`."""

    def __init__(self, *, min_hits: int = 20, max_literals: int = 24, max_templates: int = 200,
                 repeats: int = 2, max_positions: int = 4096, pinned: Iterable[str] = (),
                 on_retired: Callable[[str], None] | None = None) -> None:
        self.min_hits = min_hits
        self.max_literals = max_literals
        self.max_templates = max_templates
        self.repeats = repeats
        self.max_positions = max_positions
        self.on_retired = on_retired or (lambda template: None)
        self._root = _Position()
        self._positions = 1
        self._learned: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._cache: dict[str, str] = {}
        for template in pinned:
            self._pin(template)

    def _pin(self, template: str) -> None:
        """A configured template's literal segments are literals here too, never forgotten."""
        node = self._root
        for segment in template.split("/")[1:]:
            if segment.startswith("{"):
                node.param = node.param or self._new()
                node = node.param
                continue
            node.pinned.add(segment)
            child = node.literal.get(segment)
            if child is None:
                child = node.literal[segment] = self._new()
            node = child

    def _new(self) -> _Position:
        self._positions += 1
        return _Position()

    def name(self, path: str) -> str:
        """The learned template of `path`, or `OTHER` while it is unknown or past the cap."""
        cached = self._cache.get(path)
        if cached is not None:
            self._learned[cached] += 1
            return cached
        template = self._resolve(path)
        if template is None:
            return OTHER
        hits = self._learned.get(template)
        if hits is None:
            if len(self._learned) >= self.max_templates:
                return OTHER
            seen = self._pending.get(template, 0) + 1
            if seen < self.repeats:
                if len(self._pending) >= 4 * self.max_templates:
                    self._pending.clear()
                self._pending[template] = seen
                return OTHER
            self._pending.pop(template, None)
            hits = 0
        self._learned[template] = hits + 1
        if len(path) <= _MAX_CACHED_PATH:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[path] = template
        return template

    def _resolve(self, path: str) -> str | None:
        """The template `path` folds to, or None while one of its positions is undecided."""
        segments = path.split("/")[1:]
        if len(segments) > MAX_DEPTH:
            return None
        node = self._root
        parts: list[str] = []
        for segment in segments:
            child = node.literal.get(segment)
            if child is not None:
                parts.append(segment)
            elif not node.variable and not self._observe(node, segment, parts):
                return None
            elif segment in node.literal:  # just promoted
                child = node.literal[segment]
                parts.append(segment)
            else:
                if node.param is None:
                    if self._positions >= self.max_positions:
                        return None
                    node.param = self._new()
                child = node.param
                parts.append(PARAM)
            node = child
        return "/" + "/".join(parts)

    def _observe(self, node: _Position, segment: str, parts: list[str]) -> bool:
        """Count `segment` at an undecided position; True once the position has decided
        (the segment promoted to a literal, or the position turned variable)."""
        if len(segment) > MAX_LITERAL_CHARS or not is_name(unquote(segment)):
            node.distinct += 1
        else:
            hits = node.seen.get(segment)
            if hits is None:
                node.distinct += 1
                hits = 0
            node.seen[segment] = hits + 1
            if (hits + 1 >= self.min_hits and node.distinct <= self.max_literals
                    and self._positions < self.max_positions):
                node.literal[segment] = self._new()
                self._cache.clear()
                return True
        if node.distinct > self.max_literals:
            self._make_variable(node, parts)
            return True
        return False

    def _make_variable(self, node: _Position, parts: list[str]) -> None:
        node.variable = True
        node.seen.clear()
        prefix = "/" + "/".join(parts)
        for segment in [s for s in node.literal if s not in node.pinned]:
            del node.literal[segment]
            self._retire(f"{prefix.rstrip('/')}/{segment}")
        self._cache.clear()

    def _retire(self, prefix: str) -> None:
        for template in [t for t in self._learned if t == prefix or t.startswith(prefix + "/")]:
            del self._learned[template]
            self.on_retired(template)

    def __len__(self) -> int:
        """How many templates are learned."""
        return len(self._learned)

    def learned(self) -> list[LearnedRoute]:
        """Every learned template, most used first."""
        return [LearnedRoute(t, n) for t, n in
                sorted(self._learned.items(), key=lambda item: (-item[1], item[0]))]
