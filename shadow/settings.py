"""The sections of the configuration file, one settings model each.

Every model forbids unknown keys and is frozen; `shadow.config.Config` assembles them and
turns validation errors into located problems. Defaults here are the documented ones
(`config/shadow.example.toml` lists every key; a test keeps the two in step).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, Field, field_validator
from yarl import URL

from shadow.env_values import expand_env, redact_secrets
from shadow.settings_compare import (  # noqa: F401  (re-exported with the other sections)
    Bridge, CompareSettings, Count, Positive, RecheckSettings, Scrubber, _Model)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"not HOST:PORT: {value!r}")
    return value


HostPort = Annotated[str, Field(min_length=3)]


def _database_url(value: str) -> str:
    """A database setting with `${NAME}` expanded; raises ValueError unless it is a
    SQLite file URL or a PostgreSQL DSN."""
    value = expand_env(value)
    if value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return value
    raise ValueError("expected sqlite:///ABSOLUTE/PATH or postgresql://... DSN")


def database_kind(value: str) -> str:
    """"sqlite" or "postgresql" for a validated database setting."""
    return "sqlite" if value.startswith("sqlite:") else "postgresql"


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
DatabaseName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


class Backend(_Model):
    """One build of the app: where it listens, how metrics name it, its database(s).

    `database` names the one database of a build; `databases` names several by a short
    name each (`{ main = "...", pet = "..." }`), all of one kind (every SQLite file, or
    every PostgreSQL database: a backend's change times are read on one clock). Tables
    are matched across the two backends by name, whatever database holds them. `url` and
    the databases may name environment variables as `${NAME}` (a password, say): they
    are expanded at load, and a password is never shown in an error."""

    url: str
    label: str | None = None
    database: DatabaseUrl | None = None
    databases: dict[DatabaseName, DatabaseUrl] | None = None
    log_files: list[str] = []
    """Files this build (or its database server) logs to, followed like `tail -F`; the
    lines gained while an exchange ran are kept, masked, with its sample."""
    calibration_url: str | None = None
    """A second instance of this build on the same database, where A/A calibration
    sends its second requests instead of the serving instance (as Diffy does)."""

    @field_validator("url", "calibration_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = expand_env(value)
        shown = redact_secrets(value)
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {shown!r}")
        if url.query_string or url.fragment:
            raise ValueError(f"a backend URL takes no query or fragment: {shown!r}")
        return value.rstrip("/")

    @field_validator("databases")
    @classmethod
    def _databases(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one database, or leave `databases` out")
        kinds = {name: database_kind(url) for name, url in value.items()}
        if len(set(kinds.values())) > 1:
            listed = ", ".join(f"{name}: {kind}" for name, kind in kinds.items())
            raise ValueError(f"all databases of one backend must be of one kind ({listed}):"
                             " its change times are read on one clock")
        return value

    @property
    def database_map(self) -> dict[str, str]:
        """Every database of this build by name (`database` alone is named "main")."""
        if self.databases:
            return dict(self.databases)
        return {"main": self.database} if self.database else {}

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", value):
            raise ValueError(f"labels are 1-40 of [A-Za-z0-9_.-]: {value!r}")
        return value


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110 token)."""


class ProxySettings(_Model):
    """The hot path: limits and timeouts toward the primary."""

    max_body_bytes: Count = 1 << 20
    connect_timeout: Positive = 5.0
    primary_timeout: Positive = 30.0
    pool_size: Count = 256
    forwarded_headers: bool = True
    max_header_bytes: Count = 16384
    ordered_writes: bool = True
    write_hold: Annotated[float, Field(ge=0, le=0.1)] = 0.002
    mode_change_wait: Positive = 5.0
    drain_timeout: Positive = 10.0
    exchange_header: str = "X-Shadow-Exchange"
    """Header naming the exchange id, sent to both builds ("": none); one a client sends
    is removed."""

    @field_validator("exchange_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if value and not _TOKEN.fullmatch(value):
            raise ValueError(f"not a header name: {value!r}")
        return value


class ConnectionSettings(_Model):
    """Client connections on both listeners (see shadow.listener); every bound has a
    metric (`shadow_connections_*`)."""

    header_timeout: Positive = 10.0
    idle_timeout: Positive = 75.0
    max_client_connections: Count | None = None
    max_admin_connections: Count = 64


class MirrorSettings(_Model):
    """The shadow lane: bounded queue, concurrency, timeout, marker header."""

    queue_size: Count = 1000
    concurrency: Count = 64
    timeout: Positive = 10.0
    max_reply_bytes: Count = 4 << 20
    marker_header: str = "X-Shadow-Request"
    marker_value: str = "1"
    marker_secret_env: str = "SHADOW_MARKER_SECRET"


class NoiseSettings(_Model):
    """A/A calibration: safe exchanges are sent a second time to the primary's build (all
    of a route's until it has `min_pairs` pairs, then a `share` of them; 0 turns it off),
    and what differs between the two replies is learnt as noise for the route.
    `fresh_values` also learns, without any second request, the places where the
    primary's replies carry a value drawn fresh for each one (a CSRF token, an error id:
    shadow.compare.fresh), once `min_fresh` of its values are seen. Until then, a
    comparison that differs only at such places is held (at most `max_held` of them, each
    for at most `hold_seconds`; 0 records them at once) and recorded once they are decided
    (shadow.compare.held)."""

    share: Annotated[float, Field(ge=0, le=1)] = 0.1
    methods: list[str] = ["GET", "HEAD"]
    min_pairs: Count = 5
    fresh_values: bool = True
    min_fresh: Count = 5
    hold_seconds: Annotated[float, Field(ge=0)] = 60.0
    max_held: Count = 1000


class Route(_Model):
    """A route template with its policy. `{name}` matches one path segment."""

    template: str
    methods: list[str] = []
    policy: Literal["mirror", "skip"] = "mirror"
    sample: Annotated[float, Field(ge=0, le=1)] = 1.0
    writes: bool | None = None
    resend: bool | None = None
    calibrate: bool | None = None
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


class LearnRoutes(_Model):
    """How templates are learned for paths no configured route matches
    (see shadow.route_learning)."""

    min_hits: Count = 20
    max_literals: Count = 24
    max_templates: Count = 200
    repeats: Count = 2


class PrivacySettings(_Model):
    """What a stored sample may hold in the clear (DESIGN.md promise 5; shadow.privacy).

    Everything else is stored as structure (keys, types, lengths) and a keyed fingerprint.
    `keep` names values allowed in the clear: JSON paths into bodies (`$.status`,
    `$..count`), row columns (`users.role`, `*.role`), `header:NAME` and `query:NAME`.
    The fingerprint key comes from the environment variable `key_env` when set, else from
    `key_file` (default: the state file's path + `.key`), created 0600 on first start.
    `log_words`: words of the app's own log lines a sample may keep beside the built-in
    vocabulary of database and runtime errors (shadow.privacy.logs).
    """

    keep: list[str] = ["header:content-type"]
    keep_numbers: bool = True
    log_words: list[str] = []
    key_env: str = "SHADOW_PRIVACY_KEY"
    key_file: str | None = None


class StoreSettings(_Model):
    """The embedded state store (SQLite file)."""

    path: str = "shadow-state.db"
    samples_per_signature: Count = 5
    max_signatures: Count = 2000
    retention_hours: Positive = 72.0


class GateSettings(_Model):
    """The cutover gate (see shadow.gate): evidence needed before the candidate serves."""

    #: compared exchanges each route needs; `min_samples` is its former name, still read
    min_compared: Count = Field(1000, validation_alias=AliasChoices("min_compared",
                                                                    "min_samples"))
    max_mismatch_rate: Annotated[float, Field(gt=0, le=1)] = 0.001
    max_shadow_error_rate: Annotated[float, Field(gt=0, le=1)] = 0.01
    expected_routes: list[str] = []
    #: the share of a route's exchanges that may be raced (unverified) before it fails
    max_raced_share: Annotated[float, Field(ge=0, le=1)] = 0.5

    @field_validator("expected_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        for route in value:
            if not re.fullmatch(r"(?:[A-Z]+ )?/\S*", route):
                raise ValueError(f"expected 'METHOD /template' or '/template': {route!r}")
        return value


class FindingsSettings(_Model):
    """Findings (see shadow.findings): where the candidate's version comes from, and
    where the route dashboards live."""

    version_header: str | None = None
    grafana_url: str | None = None
    #: findings kept; past it the least frequent, least recent untriaged ones are evicted
    max_kept: Count = 1000

    @field_validator("version_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value):
            raise ValueError(f"not a header name: {value!r}")
        return value

    @field_validator("grafana_url")
    @classmethod
    def _grafana(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s?#]+", value):
            raise ValueError(f"not an http(s) URL without query: {value!r}")
        return value.rstrip("/") if value else value


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
    now_tolerance: Annotated[float, Field(ge=0)] = 2.0
    keymap_size: Count = 100_000
    rewrite_ids: bool = True
    max_group: Count = 64
    attribution_timeout: Positive = 10.0
    drain_interval: Positive = 0.5
    max_outside_writes: Annotated[int, Field(ge=0)] = 100
    #: Changes a change log keeps while nobody drains it (the proxy is down); older ones
    #: are dropped and the gap is counted at the next drain.
    max_pending: Annotated[int, Field(ge=1024)] = 100_000
    #: How PostgreSQL changes are captured: logical decoding where the server and the
    #: installing role allow it, else triggers ("auto"); or only one of them.
    postgres_capture: Literal["auto", "decoding", "triggers"] = "auto"
    #: How SQLite changes are captured: read from the write-ahead log ("wal": install
    #: switches the file to WAL mode, nothing is added to the app's schema; a change is
    #: placed among the exchanges by the log's own order), or by triggers in the database
    #: ("triggers": every connection the app opens parses them; a change carries its
    #: moment, to the millisecond).
    sqlite_capture: Literal["wal", "triggers"] = "wal"
    #: Tables that changed name in the migration: legacy name = candidate name. Rows of
    #: such a table are compared, and reported, under its legacy name.
    renamed: dict[str, str] = {}

    @field_validator("renamed")
    @classmethod
    def _renamed(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        seen: dict[str, str] = {}
        for legacy, candidate in value.items():
            if not candidate:
                problems.append(f"{legacy}: an empty candidate table name")
            elif candidate.casefold() in seen:
                problems.append(f"{legacy}: candidate table {candidate!r} is already the "
                                f"twin of {seen[candidate.casefold()]!r}")
            seen.setdefault(candidate.casefold(), legacy)
        if problems:
            raise ValueError("; ".join(problems))
        return value


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
