"""Route templates: bounded names for request paths, and the policy of each route.

A request path is matched against the configured templates (`/api/mood/{id}`); a path no
template matches is named by a template learned from traffic (shadow.route_learning:
constant segments stay, everything else is `{param}`), or `{other}` while its shape is
unknown, past the cap on learned templates, or with `fold_ids = false`. Metric labels stay
bounded whatever the traffic, and never carry a raw path value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shadow.http1 import RESENDABLE
from shadow.route_learning import OTHER, LearnedRoute, RouteLearner

if TYPE_CHECKING:
    from shadow.config import Config

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """What the proxy does with requests of one route."""

    template: str
    methods: frozenset[str] = frozenset()
    mirror: bool = True
    sample: float = 1.0
    writes: bool | None = None
    resend: bool | None = None
    calibrate: bool | None = None
    ignore_paths: tuple[str, ...] = ()
    unordered_paths: tuple[str, ...] = ()

    def may_write(self, method: str) -> bool:
        """True when a request of this route may change the database."""
        if self.writes is not None:
            return self.writes
        return method not in SAFE_METHODS

    def may_resend(self, method: str) -> bool:
        """True when a request of this route may be sent to a backend a second time after
        the backend closed a reused connection without a byte of reply (RFC 9112 section
        9.3.1): a read, unless the route's `resend` says otherwise."""
        if self.resend is not None:
            return self.resend
        return method in RESENDABLE

    def may_calibrate(self, method: str) -> bool:
        """True when a request of this route may be sent to the primary's build a second
        time for A/A calibration: the route's `calibrate` if set, else any request that
        does not write (a mirrored route only; a `writes = true` read is never sent twice
        unless the route says so)."""
        if not self.mirror:
            return False
        if self.calibrate is not None:
            return self.calibrate
        return not self.may_write(method)


DEFAULT_POLICY = RoutePolicy(template=OTHER)


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    policies: list[RoutePolicy] = field(default_factory=list)


class RouteTable:
    """Matches a path to its template and policy. Build once with `from_config`."""

    def __init__(self, policies: list[RoutePolicy], *, fold_ids: bool = True,
                 learner: RouteLearner | None = None) -> None:
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
        if learner is None:
            learner = RouteLearner(pinned=[p.template for p in policies])
        self._learner = learner if fold_ids else None
        self._learned: dict[str, RoutePolicy] = {}

    def on_retired(self, forget: Callable[[str], None]) -> None:
        """Call `forget(template)` whenever a learned template is retired (its position
        turned out to hold values, not words), e.g. to drop its metric series."""
        if self._learner is not None:
            def retired(template: str) -> None:
                self._learned.pop(template, None)
                forget(template)
            self._learner.on_retired = retired

    @classmethod
    def from_config(cls, config: Config) -> RouteTable:
        policies = [
            RoutePolicy(
                template=route.template,
                methods=frozenset(route.methods),
                mirror=route.policy == "mirror",
                sample=route.sample,
                writes=route.writes,
                resend=route.resend,
                calibrate=route.calibrate,
                ignore_paths=tuple(route.ignore_paths),
                unordered_paths=tuple(route.unordered_paths),
            )
            for route in config.routes
        ]
        learn = config.learn_routes
        learner = RouteLearner(
            min_hits=learn.min_hits, max_literals=learn.max_literals,
            max_templates=learn.max_templates, repeats=learn.repeats,
            pinned=[p.template for p in policies])
        return cls(policies, fold_ids=config.fold_ids, learner=learner)

    def match(self, method: str, path: str) -> RoutePolicy:
        """The policy of the configured template matching `path`, or of its folded form."""
        found = self._walk(self._root, path.split("/")[1:], 0, method)
        if found is not None:
            return found
        return self._fold(path)

    def configured(self, method: str, path: str) -> RoutePolicy | None:
        """The policy of the configured template matching `path`, if any; unlike `match`,
        nothing is learnt from the call."""
        return self._walk(self._root, path.split("/")[1:], 0, method)

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
        if self._learner is None:
            return DEFAULT_POLICY
        template = self._learner.name(path)
        policy = self._learned.get(template)
        if policy is None:
            if template == OTHER:
                return DEFAULT_POLICY
            policy = self._learned[template] = RoutePolicy(template=template)
        return policy

    @property
    def learned_count(self) -> int:
        return len(self._learner) if self._learner is not None else 0

    def learned(self) -> list[LearnedRoute]:
        """The templates learned from traffic, most used first (empty with fold_ids off)."""
        return self._learner.learned() if self._learner is not None else []

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
