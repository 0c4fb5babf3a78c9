"""Settings: one TOML file, validated once at start-up.

`load_config(path)` returns a `Config` or raises `ConfigError`, whose message lists every
problem at once with its location (`backends.candidate.url: not an http(s) URL: ...`).
Nothing here is parsed again per request: route templates and comparison rules are
compiled into `shadow.routes.RouteTable` and `shadow.compare.rules.ReplyRules` by
`shadow.app` from these values.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from shadow import config_check
from shadow.config_check import BACKENDS
from shadow.settings import (  # noqa: F401  (re-exported: the settings models)
    Backend, Bridge, ColumnSettings, CompareSettings, ConnectionSettings, FindingsSettings,
    GateSettings, HostPort, LearnRoutes, LogSettings, MirrorSettings, NoiseSettings,
    PrivacySettings, ProxySettings, Route, RowSettings, Scrubber, StoreSettings,
    _host_port, _Model,
)

MODES = ("legacy-only", "shadow", "cutover", "candidate-only")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one `location: message` per line."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class Config(_Model):
    """The whole configuration. Only `backends` is required; everything else defaults."""

    listen: HostPort = "127.0.0.1:8080"
    admin_listen: HostPort = "127.0.0.1:8081"
    mode: Literal["legacy-only", "shadow", "cutover", "candidate-only"] = "shadow"
    admin_token_env: str = "SHADOW_ADMIN_TOKEN"
    admin_token_name: str = "admin"
    viewer_token_env: str = "SHADOW_VIEWER_TOKEN"
    viewer_token_name: str = "viewer"
    session_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 480.0
    backends: dict[str, Backend]
    proxy: ProxySettings = ProxySettings()
    connections: ConnectionSettings = ConnectionSettings()
    mirror: MirrorSettings = MirrorSettings()
    compare: CompareSettings = CompareSettings()
    noise: NoiseSettings = NoiseSettings()
    routes: list[Route] = []
    fold_ids: bool = True
    learn_routes: LearnRoutes = LearnRoutes()
    privacy: PrivacySettings = PrivacySettings()
    store: StoreSettings = StoreSettings()
    gate: GateSettings = GateSettings()
    findings: FindingsSettings = FindingsSettings()
    rows: RowSettings = RowSettings()
    log: LogSettings = LogSettings()

    @field_validator("listen", "admin_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port(value)

    def label(self, backend: str) -> str:
        """The name a backend goes by in metrics and the UI."""
        return self.backends[backend].label or backend

    @property
    def rows_enabled(self) -> bool:
        return all(self.backends[name].database_map for name in BACKENDS)


def _renamed_problems(data: dict) -> list[str]:
    """Sections that were replaced, with where their meaning went."""
    problems = []
    if "redact" in data:
        problems.append("redact: replaced by [privacy]: nothing is stored in the clear "
                        "unless [privacy] keep names it (see README, 'What is stored')")
    store = data.get("store")
    if isinstance(store, dict) and "max_body_chars" in store:
        problems.append("store.max_body_chars: bodies are no longer stored as text; "
                        "samples hold their shape (see [privacy])")
    return problems


def _keep_problems(data: dict) -> list[str]:
    from shadow.privacy.keep import keep_problems

    from shadow.privacy.logs import word_problems

    privacy = data.get("privacy")
    if not isinstance(privacy, dict):
        return []
    keep, words = privacy.get("keep"), privacy.get("log_words")
    return ((keep_problems(keep) if isinstance(keep, list) else [])
            + (word_problems(words) if isinstance(words, list) else []))


def parse_config(data: dict, source: str = "config") -> Config:
    """Validate a decoded TOML document; raises ConfigError listing every problem."""
    renamed = _renamed_problems(data)
    data = {k: v for k, v in data.items() if k != "redact"}
    if isinstance(data.get("store"), dict):
        data["store"] = {k: v for k, v in data["store"].items() if k != "max_body_chars"}
    problems = renamed + config_check.problems(data, Config) + _keep_problems(data)
    if problems:
        raise ConfigError(problems, source)
    config = Config.model_validate(data)
    problems = _compile_problems(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def _compile_problems(config: Config) -> list[str]:
    """Problems only visible once rules are compiled (JSON paths, templates)."""
    from shadow.compare.rules import build_rules
    from shadow.routes import RouteTable

    problems: list[str] = []
    compare = config.compare
    try:
        build_rules(
            headers=compare.headers,
            ignore_paths=compare.ignore_paths,
            unordered_paths=compare.unordered_paths,
            numeric_tolerance=compare.numeric_tolerance,
            time_tolerance=compare.time_tolerance,
            scrubbers=[(s.pattern, s.replacement) for s in compare.scrubbers],
        )
    except ValueError as exc:
        problems.append(f"compare: {exc}")
    for index, route in enumerate(config.routes):
        try:
            build_rules(ignore_paths=route.ignore_paths, unordered_paths=route.unordered_paths)
        except ValueError as exc:
            problems.append(f"routes[{index}]: {exc}")
    try:
        RouteTable.from_config(config)
    except ValueError as exc:
        problems.append(f"routes: {exc}")
    try:
        row_rules(config)
    except ValueError as exc:
        problems.append(f"rows.columns: {exc}")
    return problems


def row_rules(config: Config):
    """The compiled row comparison rules of a config (raises ValueError)."""
    from shadow.compare.bridge import ValueKind
    from shadow.rows.model import ColumnRule, RowRules

    rows = config.rows
    return RowRules.build(
        include=rows.include or None, exclude=rows.exclude,
        columns={name: ColumnRule(ignore=c.ignore, tolerance=c.tolerance,
                                  kind=ValueKind(c.kind) if c.kind else None,
                                  empty_is_null=c.empty_is_null)
                 for name, c in rows.columns.items()},
        now_tolerance=rows.now_tolerance)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file; raises ConfigError (with every problem) or OSError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"TOML syntax: {exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text: {exc}"], str(path)) from None
    return parse_config(data, str(path))
