"""Row state inside a running proxy: one capture per database, the key map, divergence.

Opened by the runtime when both backends name a database. The proxy drains a backend's
change log right after each write it sent there (one write at a time, so every change
belongs to exactly one exchange); the verifier diffs the two sides through `diff()`.
The key map is kept legacy key -> candidate key whatever the mode, and persisted in the
state store with the divergence flag, so a restart loses neither.

Divergence: once a write reached one database but not the other (dropped shadow work, a
route the shadow never sees, a mode without a shadow), rows can no longer match; the
flag stays set until an operator re-copies the data and calls resync. `listeners` are
told at once, with the reason or None, each time the flag is set or cleared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shadow.rows.capture import Capture, CaptureError, CaptureStatus
from shadow.rows.crossed import Crossings, NewRow
from shadow.rows.databases import DatabasesCapture, compared_names, inner_rules
from shadow.rows.diff import RowDiff, diff_rows
from shadow.rows.ids import IdTranslator
from shadow.rows.keymap import KeyMap, Pair
from shadow.rows.match import ChangeMatcher
from shadow.rows.model import RowRules, TableInfo, fold
from shadow.rows.sequences import as_anchor, surrogate_key
from shadow.rows.stamps import RecentImages, RowStamps
from shadow.verdict import RowChange

log = logging.getLogger("shadow.rows")
META = "rows"


def open_capture(database: str | Mapping[str, str], rules: RowRules, *,
                 names: Mapping[str, str] | None = None, max_pending: int = 100_000,
                 method: str = "auto", sqlite_method: str = "wal") -> Capture:
    """The capture of one backend: `database` is its one database setting
    (sqlite:///path or postgresql://...) or several by name; `names` maps tables the
    migration renamed to the name they are compared under (see `shadow.rows.databases`);
    `max_pending` bounds a SQLite change log while nobody drains it; `method` is how
    PostgreSQL changes are captured (auto, decoding, triggers), `sqlite_method` how
    SQLite's are (wal, triggers)."""
    databases = {"main": database} if isinstance(database, str) else dict(database)
    if len(databases) == 1 and not names:
        return _one(next(iter(databases.values())), rules, max_pending, method, sqlite_method)
    own_rules = inner_rules(rules, names or {})
    parts = {db: _one(url, own_rules, max_pending, method, sqlite_method)
             for db, url in databases.items()}
    return DatabasesCapture(parts, rules=rules, names=names)


def _one(database: str, rules: RowRules, max_pending: int, method: str,
         sqlite_method: str) -> Capture:
    if database.startswith("sqlite:///"):
        path = database.removeprefix("sqlite://")
        if sqlite_method == "triggers":
            from shadow.rows.sqlite import SqliteCapture

            return SqliteCapture(path, rules=rules, cap=max_pending)
        from shadow.rows.sqlite_walcapture import SqliteWalCapture

        return SqliteWalCapture(path, rules=rules)
    from shadow.rows.postgres import PostgresCapture

    return PostgresCapture(database, rules=rules, method=method)


def backend_capture(config: Any, backend: str, rules: RowRules | None = None) -> Capture:
    """The (unopened) capture of one configured backend, every database of it."""
    from shadow.config import row_rules

    return open_capture(config.backends[backend].database_map,
                        rules if rules is not None else row_rules(config),
                        names=compared_names(config.rows.renamed, backend),
                        max_pending=config.rows.max_pending,
                        method=config.rows.postgres_capture,
                        sqlite_method=config.rows.sqlite_capture)


class _Inverted:
    """The key map seen from the candidate's side (in cutover the candidate is primary)."""

    def __init__(self, inner: KeyMap) -> None:
        self._inner = inner

    def learn(self, table, primary, shadow, *, anchor: bool = True) -> None:
        self._inner.learn(table, shadow, primary, anchor=anchor)

    def shadow_key(self, table, primary):
        return self._inner.primary_key(table, primary)

    def primary_key(self, table, shadow):
        return self._inner.shadow_key(table, shadow)

    def anchor(self, table):
        pair = self._inner.anchor(table)
        return None if pair is None else (pair[1], pair[0])

    def set_anchor(self, table, primary, shadow) -> None:
        self._inner.set_anchor(table, shadow, primary)


class RowState:
    """Captures of both databases, their table catalogues, the key map and divergence."""

    def __init__(self, *, captures: dict[str, Capture], tables: dict[str, dict[str, TableInfo]],
                 rules: RowRules, keymap: KeyMap) -> None:
        self.captures = captures
        self.tables = tables
        self.rules = rules
        self.keymap = keymap
        self.diverged: str | None = None
        self.listeners: list[Callable[[str | None], None]] = []
        self.status: dict[str, CaptureStatus] = {}
        self._status_seen: dict[str, int] = {}
        self.ids = IdTranslator(keymap, {name for side in tables.values() for name in side})
        self.crossings = Crossings()  # new rows overlapping writes numbered in another order
        self.stamps: dict[str, RowStamps] = {}  # per primary backend: rows' write moments
        self.recent: dict[str, RecentImages] = {}  # per backend: rows' recent images
        self.unreadable: set[tuple[str, str]] = set()  # (backend, table): sequence refused

    @classmethod
    async def open(cls, databases: Mapping[str, str | Mapping[str, str]], rules: RowRules, *,
                   keymap_size: int, saved: dict[str, Any] | None, max_pending: int = 100_000,
                   method: str = "auto", renamed: Mapping[str, str] | None = None,
                   sqlite_method: str = "wal") -> RowState:
        """Open both captures (`databases`: per backend its database, or several by
        name; `renamed`: legacy table name -> candidate name); raises CaptureError when a
        database cannot be reached or one backend holds a compared table twice."""
        captures: dict[str, Capture] = {}
        try:
            for backend, database in databases.items():
                capture = open_capture(database, rules, max_pending=max_pending, method=method,
                                       sqlite_method=sqlite_method,
                                       names=compared_names(renamed or {}, backend))
                await capture.open()
                captures[backend] = capture
            tables = {b: await c.introspect() for b, c in captures.items()}
        except BaseException:
            for capture in captures.values():
                await capture.close()
            raise
        state = cls(captures=captures, tables=tables, rules=rules,
                    keymap=KeyMap(max_pairs=keymap_size))
        saved = saved or {}
        state.keymap.load(tuple(tuple(k) if isinstance(k, list) else k for k in pair)
                          for pair in saved.get("keymap", []))
        state.keymap.load_anchors(saved.get("anchors", []))
        state.ids.learn(state.keymap.pairs())
        state.diverged = saved.get("diverged")
        for backend, capture in captures.items():
            status = state.status[backend] = await capture.status()
            if not status.installed:
                log.warning("change capture not installed: run `shadow rows install`",
                            extra={"backend": backend})
            elif not status.healthy:
                log.warning("change capture out of date", extra={
                    "backend": backend, "problems": "; ".join(status.problems())})
        return state

    async def close(self) -> None:
        for capture in self.captures.values():
            await capture.close()

    def capture_counts(self) -> dict[str, tuple[int, int]]:
        """Per backend: schema changes its capture followed, and changes it lost (to the
        log's cap, or to a table dropped before the drain), since open."""
        return {backend: (getattr(capture, "schema_changes", 0), getattr(capture, "lost", 0))
                for backend, capture in self.captures.items()}

    async def refresh_status(self) -> None:
        """Read the status of each capture again when it followed a schema change since
        the last look, so that status reports what is installed now."""
        counts = {backend: changes for backend, (changes, _lost) in self.capture_counts().items()}
        for backend, changes in counts.items():
            if changes != self._status_seen.get(backend, 0):
                self.status[backend] = await self.captures[backend].status()
                self._status_seen[backend] = changes

    def schema_seen(self, backend: str) -> dict[str, Any]:
        """The last schema change `backend`'s capture followed while running, if any."""
        change = getattr(self.captures[backend], "last_schema_change", None)
        return {"last_schema_change": change} if change else {}

    def saved(self) -> dict[str, Any]:
        """What the state store keeps across restarts."""
        return {"keymap": [list(pair) for pair in self.keymap.pairs()],
                "anchors": [list(anchor) for anchor in self.keymap.anchors()],
                "diverged": self.diverged}

    async def drain(self, backend: str) -> tuple[RowChange, ...]:
        """The changes logged on `backend` since the last drain (one write's worth)."""
        changes = tuple(await self.captures[backend].drain())
        self.recent.setdefault(backend, RecentImages()).add(changes)
        return changes

    def diff(self, primary_backend: str, primary: tuple[RowChange, ...],
             shadow_backend: str, shadow: tuple[RowChange, ...]) -> RowDiff:
        stamps = self.stamps.setdefault(primary_backend, RowStamps(self.keymap.max_pairs))
        result = diff_rows(primary, shadow, primary_tables=self.tables[primary_backend],
                           shadow_tables=self.tables[shadow_backend], rules=self.rules,
                           keymap=self._seen_from(primary_backend),  # type: ignore[arg-type]
                           stamps=stamps, recent=(self.recent.get(primary_backend),
                                                  self.recent.get(shadow_backend)))
        self.ids.learn(result.new_pairs)
        return result

    def crossed(self, primary_backend: str, primary: tuple[RowChange, ...],
                shadow: tuple[RowChange, ...], pairs: Iterable[Pair]) -> int:
        """Note the new rows of a group of overlapping writes (`primary`, `shadow`: its
        changes; `pairs`: the new rows paired) whose keys each side numbered in another
        order (see `shadow.rows.crossed`); returns how many rows crossed."""
        images: tuple[dict, dict] = ({}, {})
        for side, changes in enumerate((primary, shadow)):
            for change in changes:
                if change.after is not None:
                    images[side][(fold(change.table), change.key)] = change.after
        tables: dict[str, list[NewRow]] = {}
        for table, p, s in pairs:
            if len(p) == 1 == len(s):
                name = fold(table)
                tables.setdefault(name, []).append(
                    (p[0], s[0], images[0].get((name, p)), images[1].get((name, s))))
        return sum(self.crossings.note(name, primary_backend, rows)
                   for name, rows in tables.items())

    def matcher(self, primary_backend: str, shadow_backend: str) -> ChangeMatcher:
        """How changes of the two backends are compared one by one (shadow.rows.stream)."""
        stamps = self.stamps.setdefault(primary_backend, RowStamps(self.keymap.max_pairs))
        return ChangeMatcher(self.tables[primary_backend], self.tables[shadow_backend],
                             self.rules, self._seen_from(primary_backend),  # type: ignore[arg-type]
                             stamps, on_pair=self.ids.learn)

    def learn_early(self, primary_backend: str, pairs: Iterable[Pair]) -> int:
        """Learn key pairs found before their group is compared (`ChangeMatcher.twins`),
        so a request naming one of those rows reaches its twin; the sequences' anchors
        stay where they were, since the group's comparison reads them. Returns how many
        pairs were new."""
        keymap = self._seen_from(primary_backend)
        new = [(table, p, s) for table, p, s in pairs if keymap.shadow_key(table, p) != s]
        for table, primary, shadow in new:
            keymap.learn(table, primary, shadow, anchor=False)
        self.ids.learn(new)
        return len(new)

    def anchor(self, roles: tuple[str, str], table: str) -> tuple[int, int] | None:
        """Where `table`'s two sequences stand, seen from `roles` (primary, shadow): the
        highest keys compared on each side, or None when its keys are not integers."""
        return as_anchor(self._seen_from(roles[0]).anchor(table))

    async def sequence_position(self, backend: str, table: str) -> int | None:
        """Where the integer key generator of `table` (folded name) stands on `backend`
        (see `Capture.sequence_position`), or None when it cannot be read."""
        name, info = self._table(backend, table)
        if info is None or len(info.key) != 1:
            return None
        try:
            return await self.captures[backend].sequence_position(name, info.key[0])
        except CaptureError as exc:
            if (backend, table) not in self.unreadable:  # once: it is asked per difference
                self.unreadable.add((backend, table))
                log.warning("sequence not readable; key differences of the table are "
                            "reported as the rows show them",
                            extra={"backend": backend, "table": table, "error": str(exc)})
            return None

    def place_anchor(self, roles: tuple[str, str], table: str, positions: tuple[int, int]) -> None:
        """`table`'s sequences stand at `positions` (primary, shadow), as read while no
        write ran: burnt values included, which no change shows."""
        self._seen_from(roles[0]).set_anchor(table, (positions[0],), (positions[1],))

    def passed(self, backend: str, change: RowChange) -> None:
        """`change` was written on `backend` by a request the proxy sent again on its
        own, and is compared with nothing: a new row still took a value of that side's
        sequence, so the table's anchor moves past it there (see shadow.rows.sequences),
        and the next pair of new rows is expected from where it truly stands."""
        _, info = self._table(backend, change.table)
        if change.op != "insert" or surrogate_key(info, [change.key]) is None:
            return
        key, anchor = change.key[0], as_anchor(self.keymap.anchor(change.table))
        if backend == "legacy":  # the key map reads from legacy to candidate
            moved = (key, key - 1) if anchor is None else (max(anchor[0], key), anchor[1])
        else:
            moved = (key - 1, key) if anchor is None else (anchor[0], max(anchor[1], key))
        self.keymap.set_anchor(change.table, (moved[0],), (moved[1],))

    def _table(self, backend: str, table: str) -> tuple[str, TableInfo | None]:
        """`table`'s own name and catalogue entry on `backend`, found by folded name."""
        return next(((name, info) for name, info in self.tables.get(backend, {}).items()
                     if fold(name) == fold(table)), (table, None))

    def _seen_from(self, primary_backend: str) -> KeyMap | _Inverted:
        return self.keymap if primary_backend == "legacy" else _Inverted(self.keymap)

    def diverge(self, reason: str) -> bool:
        """Mark the shadow's rows as no longer comparable; True if this is news."""
        if self.diverged:
            return False
        self.diverged = f"{reason} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        log.warning("shadow rows diverged", extra={"reason": reason})
        self._tell()
        return True

    def resync(self) -> None:
        """The operator re-copied the data: forget divergence and key pairs."""
        self.diverged = None
        self.keymap.clear()
        self.crossings.clear()
        self.ids.shifted.clear()
        self._tell()

    def _tell(self) -> None:
        for listener in self.listeners:
            listener(self.diverged)
