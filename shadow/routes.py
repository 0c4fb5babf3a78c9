"""Route templates: bounded names for request paths, and the policy of each route.

A request path is matched against the configured templates (`/api/mood/{id}`); a path no
template matches is folded automatically, id-like segments (integers, UUIDs, long hex or
token-like strings) becoming `{id}`. The number of distinct folded templates is capped, so
metric labels stay bounded whatever the traffic: past the cap a path is named `{other}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shadow.config import Config

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
OTHER = "{other}"
_ID = re.compile(
    r"""^(?:
        \d+                                                   # integer
      | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}  # UUID
      | (?=[^/]*\d)[0-9a-fA-F]{8,}                            # hex with a digit
      | (?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_-]{16,}        # long token with digits
    )$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """What the proxy does with requests of one route."""

    template: str
    methods: frozenset[str] = frozenset()
    mirror: bool = True
    sample: float = 1.0
    writes: bool | None = None
    ignore_paths: tuple[str, ...] = ()
    unordered_paths: tuple[str, ...] = ()

    def may_write(self, method: str) -> bool:
        """True when a request of this route may change the database."""
        if self.writes is not None:
            return self.writes
        return method not in SAFE_METHODS


DEFAULT_POLICY = RoutePolicy(template=OTHER)


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    policies: list[RoutePolicy] = field(default_factory=list)


def fold_path(path: str) -> str:
    """The path with id-like segments replaced by `{id}`."""
    segments = path.split("/")
    return "/".join("{id}" if _ID.match(seg) else seg for seg in segments)


class RouteTable:
    """Matches a path to its template and policy. Build once with `from_config`."""

    def __init__(self, policies: list[RoutePolicy], *, fold_ids: bool = True,
                 max_folded: int = 500) -> None:
        self._root = _Node()
        for policy in policies:
            node = self._root
            for segment in policy.template.split("/")[1:]:
                if segment.startswith("{"):
                    node.param = node.param or _Node()
                    node = node.param
                else:
                    node = node.literal.setdefault(segment, _Node())
            for existing in node.policies:
                if not existing.methods or not policy.methods or existing.methods & policy.methods:
                    raise ValueError(f"duplicate template {policy.template!r} for the same methods")
            node.policies.append(policy)
        self._fold_ids = fold_ids
        self._max_folded = max_folded
        self._folded: dict[str, RoutePolicy] = {}

    @classmethod
    def from_config(cls, config: Config) -> RouteTable:
        policies = [
            RoutePolicy(
                template=route.template,
                methods=frozenset(route.methods),
                mirror=route.policy == "mirror",
                sample=route.sample,
                writes=route.writes,
                ignore_paths=tuple(route.ignore_paths),
                unordered_paths=tuple(route.unordered_paths),
            )
            for route in config.routes
        ]
        return cls(policies, fold_ids=config.fold_ids)

    def match(self, method: str, path: str) -> RoutePolicy:
        """The policy of the configured template matching `path`, or of its folded form."""
        found = self._walk(self._root, path.split("/")[1:], 0, method)
        if found is not None:
            return found
        return self._fold(path)

    def _walk(self, node: _Node, segments: list[str], index: int, method: str) -> RoutePolicy | None:
        if index == len(segments):
            for policy in node.policies:
                if not policy.methods or method in policy.methods:
                    return policy
            return None
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, method)
            if found is not None:
                return found
        if node.param is not None and segment:
            return self._walk(node.param, segments, index + 1, method)
        return None

    def _fold(self, path: str) -> RoutePolicy:
        template = fold_path(path) if self._fold_ids else OTHER
        policy = self._folded.get(template)
        if policy is None:
            if len(self._folded) >= self._max_folded:
                return DEFAULT_POLICY
            policy = RoutePolicy(template=template)
            self._folded[template] = policy
        return policy

    @property
    def templates(self) -> list[str]:
        """Every configured template (the app's known routes)."""
        out: list[str] = []

        def visit(node: _Node) -> None:
            out.extend(p.template for p in node.policies)
            for child in node.literal.values():
                visit(child)
            if node.param:
                visit(node.param)

        visit(self._root)
        return out
