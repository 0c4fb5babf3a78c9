"""Settings: one TOML file, validated once at start-up.

`load_config(path)` returns a `Config` or raises `ConfigError`, whose message lists every
problem at once with its location (`backends.candidate.url: not an http(s) URL: ...`).
Nothing here is parsed again per request: route templates and comparison rules are
compiled into `shadow.routes.RouteTable` and `shadow.compare.rules.ReplyRules` by
`shadow.app` from these values.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from yarl import URL

MODES = ("legacy-only", "shadow", "cutover", "candidate-only")
BACKENDS = ("legacy", "candidate")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one `location: message` per line."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"not HOST:PORT: {value!r}")
    return value


HostPort = Annotated[str, Field(min_length=3)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]


class Backend(_Model):
    """One build of the app: where it listens, how metrics name it, its database."""

    url: str
    label: str | None = None
    database: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {value!r}")
        if url.query_string or url.fragment:
            raise ValueError(f"a backend URL takes no query or fragment: {value!r}")
        return value.rstrip("/")

    @field_validator("database")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("sqlite:///"):
            return value
        if value.startswith(("postgresql://", "postgres://")):
            return value
        raise ValueError("expected sqlite:///ABSOLUTE/PATH or postgresql://... DSN")

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", value):
            raise ValueError(f"labels are 1-40 of [A-Za-z0-9_.-]: {value!r}")
        return value


class ProxySettings(_Model):
    """The hot path: limits and timeouts toward the primary."""

    max_body_bytes: Count = 1 << 20
    connect_timeout: Positive = 5.0
    primary_timeout: Positive = 30.0
    pool_size: Count = 256
    forwarded_headers: bool = True
    max_header_bytes: Count = 16384
    ordered_writes: bool = True
    drain_timeout: Positive = 10.0


class MirrorSettings(_Model):
    """The shadow lane: bounded queue, concurrency, timeout, marker header."""

    queue_size: Count = 1000
    concurrency: Count = 64
    timeout: Positive = 10.0
    max_reply_bytes: Count = 4 << 20
    write_queue_size: Count = 10000
    marker_header: str = "X-Shadow-Request"
    marker_value: str = "1"


class Scrubber(_Model):
    pattern: str
    replacement: str = ""

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc}): {value!r}") from None
        return value


class Bridge(_Model):
    bool_int: bool = False
    timestamps: bool = False
    numeric_strings: bool = False
    empty_null: bool = False


class CompareSettings(_Model):
    """How two replies are compared (see shadow.compare)."""

    headers: list[str] = ["content-type"]
    ignore_paths: list[str] = []
    unordered_paths: list[str] = []
    numeric_tolerance: Annotated[float, Field(ge=0)] = 0.0
    time_tolerance: Annotated[float, Field(ge=0)] = 0.0
    scrubbers: list[Scrubber] = []
    bridge: Bridge = Bridge()


class Route(_Model):
    """A route template with its policy. `{name}` matches one path segment."""

    template: str
    methods: list[str] = []
    policy: Literal["mirror", "skip"] = "mirror"
    sample: Annotated[float, Field(ge=0, le=1)] = 1.0
    writes: bool | None = None
    ignore_paths: list[str] = []
    unordered_paths: list[str] = []

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"a template starts with '/': {value!r}")
        for segment in value.split("/")[1:]:
            if "{" in segment or "}" in segment:
                if not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", segment):
                    raise ValueError(f"a placeholder is a whole segment like {{id}}: {value!r}")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        for method in value:
            if not re.fullmatch(r"[A-Z]+", method):
                raise ValueError(f"not an upper-case HTTP method: {method!r}")
        return value


class RedactSettings(_Model):
    """What is never stored or logged in the clear (DESIGN.md promise 5)."""

    headers: list[str] = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
        "x-auth-token", "x-csrf-token",
    ]
    json_keys: list[str] = [
        "password", "passwd", "pin", "token", "access_token", "refresh_token", "secret",
        "api_key", "session", "ssn", "note", "notes", "content", "body", "email",
        "phone", "name", "username", "address", "dob", "birth_date",
    ]
    query_params: list[str] = ["token", "access_token", "key", "api_key", "email", "q"]
    patterns: list[str] = [
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        r"\b(?:\d[ -]?){13,19}\b",
    ]
    replacement: str = "[redacted]"

    @field_validator("patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc}): {pattern!r}") from None
        return value


class StoreSettings(_Model):
    """The embedded state store (SQLite file)."""

    path: str = "shadow-state.db"
    samples_per_signature: Count = 5
    max_signatures: Count = 2000
    retention_hours: Positive = 72.0
    max_body_chars: Count = 16384


class GateSettings(_Model):
    """The cutover gate (see shadow.gate): evidence needed before the candidate serves."""

    min_samples: Count = 1000
    max_mismatch_rate: Annotated[float, Field(gt=0, le=1)] = 0.001
    max_shadow_error_rate: Annotated[float, Field(gt=0, le=1)] = 0.01
    expected_routes: list[str] = []

    @field_validator("expected_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        for route in value:
            if not re.fullmatch(r"(?:[A-Z]+ )?/\S*", route):
                raise ValueError(f"expected 'METHOD /template' or '/template': {route!r}")
        return value


class ColumnSettings(_Model):
    """How one database column is compared (see shadow.rows.model.ColumnRule)."""

    ignore: bool = False
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    kind: Literal["timestamp", "bool", "json"] | None = None
    empty_is_null: bool = False


class RowSettings(_Model):
    """Row-state verification; on when both backends name a `database`."""

    include: list[str] = []
    exclude: list[str] = []
    columns: dict[str, ColumnSettings] = {}
    keymap_size: Count = 100_000
    rewrite_ids: bool = True


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class Config(_Model):
    """The whole configuration. Only `backends` is required; everything else defaults."""

    listen: HostPort = "127.0.0.1:8080"
    admin_listen: HostPort = "127.0.0.1:8081"
    mode: Literal["legacy-only", "shadow", "cutover", "candidate-only"] = "shadow"
    admin_token_env: str = "SHADOW_ADMIN_TOKEN"
    admin_token_name: str = "admin"
    backends: dict[str, Backend]
    proxy: ProxySettings = ProxySettings()
    mirror: MirrorSettings = MirrorSettings()
    compare: CompareSettings = CompareSettings()
    routes: list[Route] = []
    fold_ids: bool = True
    redact: RedactSettings = RedactSettings()
    store: StoreSettings = StoreSettings()
    gate: GateSettings = GateSettings()
    rows: RowSettings = RowSettings()
    log: LogSettings = LogSettings()

    @field_validator("listen", "admin_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port(value)

    @model_validator(mode="after")
    def _distinct(self) -> Config:
        if self.listen == self.admin_listen and not self.listen.endswith(":0"):
            raise ValueError(f"listen and admin_listen are the same address: {self.listen}")
        return self

    def label(self, backend: str) -> str:
        """The name a backend goes by in metrics and the UI."""
        return self.backends[backend].label or backend

    @property
    def rows_enabled(self) -> bool:
        return all(self.backends[name].database for name in BACKENDS)


def _location(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or str(item).startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required"
        problems.append(f"{_location(error['loc'])}: {message}")
    return problems


def _backend_problems(data: dict) -> list[str]:
    """The two backend keys are fixed words; checked on the raw document so that this is
    reported even when a backend's own fields are invalid too."""
    backends = data.get("backends")
    if not isinstance(backends, dict):
        return []
    problems = []
    unknown = sorted(set(backends) - set(BACKENDS))
    missing = [name for name in BACKENDS if name not in backends]
    if unknown:
        problems.append(f"backends: unknown backend(s) {unknown}; the two backends are "
                        "'legacy' and 'candidate'")
    if missing:
        problems.append(f"backends: missing backend(s) {missing}")
    return problems


def parse_config(data: dict, source: str = "config") -> Config:
    """Validate a decoded TOML document; raises ConfigError listing every problem."""
    problems = _backend_problems(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + _problems(exc), source) from None
    if problems:
        raise ConfigError(problems, source)
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
                 for name, c in rows.columns.items()})


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
