"""The records that carry one exchange through the verifier.

Every record here is frozen and holds plain Python values only (no library types), so it
can be compared, stored (through shadow.privacy), and tested without I/O.

    Exchange      one client request as received
    Reply         what one backend answered (or the error instead of an answer)
    RowChange     one row one backend's database changed while serving one exchange
    Observation   what one backend did for one exchange: its Reply and its RowChanges
    Difference    one place where the two observations disagree
    Comparison    the record of one exchange: both observations, differences, verdict
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Headers = tuple[tuple[str, str], ...]


class Verdict(StrEnum):
    """The outcome of one exchange. `raced`: unverified, a safe read whose replies differed
    while writes overlapped it and that the proxy could not settle (shadow.recheck); not
    evidence either way, never a match."""

    MATCH = "match"
    MISMATCH = "mismatch"
    RACED = "raced"
    SHADOW_ERROR = "shadow_error"
    PRIMARY_ERROR = "primary_error"
    SKIPPED = "skipped"


class Kind(StrEnum):
    """Where a Difference was found."""

    STATUS = "status"
    HEADER = "header"
    BODY = "body"
    ROW_MISSING = "row_missing"
    ROW_EXTRA = "row_extra"
    ROW_CHANGED = "row_changed"


ROW_KINDS = frozenset({Kind.ROW_MISSING, Kind.ROW_EXTRA, Kind.ROW_CHANGED})


class Role(StrEnum):
    PRIMARY = "primary"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One client request as received.

    `target` is the raw request target (path and query, still percent-encoded); `route`
    is its bounded template (`/api/mood/{id}`), the only form used in metric labels.
    """

    id: str
    method: str
    target: str
    route: str
    headers: Headers
    body: bytes
    received_at: float

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class Reply:
    """What one backend answered. `error` is set (and status is 0) when there was no
    usable answer: 'connect', 'timeout', 'protocol', 'too_large' or 'cancelled'."""

    status: int
    headers: Headers
    body: bytes
    elapsed: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True, slots=True)
class RowChange:
    """One row changed by one backend while serving one exchange.

    `key` is the primary key as a tuple of column values; `before` / `after` are the row
    images (column -> value), None for the side an insert or delete does not have. `at` is
    when the database made the change, in seconds since the epoch on the database's own
    clock (None when the capture method does not record it); it places the change among
    the exchanges that were running then, and takes no part in equality. `since`, when
    set, says the moment is known only to lie between `since` and `at`. `mark`, when
    set, is the change's place in its database's log, `(log, position)`: it orders the
    change exactly among readings of that log's position (`shadow.rows.sqlite_position`).
    """

    table: str
    key: tuple[Any, ...]
    op: str  # 'insert' | 'update' | 'delete' | 'truncate' (a whole table, key ())
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: float | None = field(default=None, compare=False)
    since: float | None = field(default=None, compare=False)
    mark: tuple[str, int] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one backend did for one exchange."""

    backend: str
    role: Role
    reply: Reply
    rows: tuple[RowChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where the primary's and the shadow's observations disagree.

    `path` is a JSON path into the body (`$.entries[3].score`), a header name, `status`,
    or `table[key].column` for rows.
    """

    kind: Kind
    path: str
    primary: Any
    shadow: Any
    detail: str = ""


_INDEX = re.compile(r"\[\d+\]")


def signature_path(path: str) -> str:
    """The path of a difference with array indices folded (`$.a[3].b` -> `$.a[*].b`),
    so that the same cause in every element groups under one signature."""
    return _INDEX.sub("[*]", path)


def signature(method: str, route: str, kind: Kind | str, path: str) -> str:
    """The grouping key of a mismatch: method + route template + kind + folded path."""
    return f"{method} {route} {kind} {signature_path(path)}"


def row_path(d: Difference) -> str:
    """A row difference's path with its key folded (`moods[17].score` -> `moods[*].score`),
    so one cause in many rows is one signature."""
    if d.kind not in ROW_KINDS:
        return d.path
    table, key, rest = row_parts(d.path)
    return f"{table}[*]{rest}" if key else d.path


def row_parts(path: str) -> tuple[str, str, str]:
    """(table, `[key]`, the rest) of a row difference's path (`moods[17].score`)."""
    table, bracket, rest = path.partition("[")
    if not bracket:
        return path, "", ""
    depth, index = 1, 0
    for index, char in enumerate(rest):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0:
            break
    return table, f"[{rest[:index + 1]}", rest[index + 1:]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The record of one exchange after both observations are in.

    `normalised` counts the differences the dialect bridge removed (0/1 vs true/false,
    timestamp renderings...), so a user can see what the bridge is hiding.
    `reason` says why an exchange was skipped or why a side errored.
    `translated` lists the ids of the shadow's reply that were read as the primary's
    before the replies were compared (`shadow.rows.ids.Translated`). `held`: the seconds
    the verdict waited for the places it differed at to be learnt (shadow.holding), 0 when
    it was recorded at once; a held comparison keeps no body, row or raw value.
    `overlapped`: how many writes ran beside the exchange on either side, or overtook its
    copy on the shadow (shadow.overlap.Watch), 0 when none was watched.
    """

    exchange: Exchange
    primary: Observation
    shadow: Observation | None
    differences: tuple[Difference, ...]
    verdict: Verdict
    normalised: int = 0
    reason: str = ""
    signatures: tuple[str, ...] = field(default=())
    translated: tuple[Any, ...] = field(default=())
    held: float = 0.0
    overlapped: int = 0
