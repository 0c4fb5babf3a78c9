"""Change capture on a SQLite database read from its write-ahead log: nothing in the app.

The database runs in WAL mode while the capture reads it: `install()` switches it (as
SQLite's own `PRAGMA journal_mode = WAL` does), and the first drain of a running proxy
switches it again when it was given back. `close()` gives the database the journal
mode it had before install when no connection of the app holds it open at that moment
(an app that opens a connection per request): in WAL mode with nobody holding the file,
every request's close is the last one and pays a checkpoint and the log's removal,
for nothing while no proxy reads it. An app that keeps its connections open keeps the
file in WAL mode, and what it writes while the proxy is down stays readable in the log.
Writes made in the old mode while the proxy was down cannot be read: the file's size
and modification time tell that there were some (`lost`). Every transaction the
app commits appends the pages it changed to the `-wal` file; `drain()` reads the frames
appended since the last drain and turns each commit's pages into the rows it inserted,
updated and deleted, with their images before and after (`sqlite_tree`). Nothing is
added to the app's schema, so a connection the app opens parses exactly what it parsed
before, and no statement of the app does any more work: capture costs the app nothing
per connection or per write.

What keeps it exact: the capture holds one read transaction open (`_pin`) from open to
close. SQLite restarts the log from its first frame only when no reader uses it, so no
frame is overwritten before it was read, and the checkpoint copies pages back into the
database file only up to the snapshot that transaction holds, so a page with no frame
in the log reads the same from the file as it did when the capture last looked. The
log then grows until `rotate_frames` frames: the next drain takes the write lock for a
moment (`BEGIN IMMEDIATE`, as any writer), reads what is left, lets the checkpoint copy
everything back and takes its read transaction again; the next writer restarts the log.
A restart nobody expected (the capture's read transaction was lost) is counted in
`lost` and the tables are walked afresh.

The app's migrations run as without capture. A commit that changes the schema cookie
reads the catalogue again; tables created, altered or renamed by it are walked afresh
and their rows in that commit are not reported (a DROP COLUMN rewrites every row), as a
trigger would not have fired for them either.

Limits: the database must live on a local file system (as WAL requires); an app that
forces `PRAGMA journal_mode = DELETE` gets "database is locked" while the proxy runs;
a VIRTUAL generated column is not stored, so images show it as None.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from shadow.compare.bridge import kind_of_sqlite
from shadow.rows import sqlite_schema as schema
from shadow.rows.capture import Capture, CaptureError
from shadow.rows.model import RowRules, TableInfo
from shadow.rows.sqlite_marker import Marker
from shadow.rows.sqlite_pages import DbHeader
from shadow.rows.sqlite_position import LogPositions
from shadow.rows.sqlite_records import record_layouts, row_changes
from shadow.rows.sqlite_thread import OneThread, mapped
from shadow.rows.sqlite_tree import Change, Trees
from shadow.rows.sqlite_wal import WalLog
from shadow.rows.sqlite_walinstall import METHOD, WalInstall
from shadow.verdict import RowChange
from shadow.writes.windows import WAL_CLOCK, WAL_TICK

log = logging.getLogger("shadow.rows")
ROTATE_FRAMES = 1000
"""Frames the log may hold before a drain lets it restart (SQLite's own checkpoint size)."""


class SqliteWalCapture(WalInstall, OneThread, Capture):
    """Capture of the SQLite file at `path` through its write-ahead log."""

    method = METHOD
    change_clock = WAL_CLOCK

    def __init__(self, path: str | Path, *, rules: RowRules | None = None,
                 busy_timeout: float = 5.0, rotate_frames: int = ROTATE_FRAMES) -> None:
        super().__init__(rules=rules)
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.rotate_frames = rotate_frames
        self.reason = ""
        self._db: sqlite3.Connection | None = None
        self._pin: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._log: WalLog | None = None
        self._positions = LogPositions(self.path)
        self._trees: Trees | None = None
        self._layouts: dict[str, schema.Layout] = {}
        self._cookie: int | None = None
        #: The capture let the log restart: the next restart seen is that one.
        self._expected_restart = False
        #: When the last scan began: every commit a later scan finds was made after it.
        self._scanned_at = time.time()
        #: Commits made while the proxy was down, for the first drain; the frame its
        #: reading begins after.
        self._backlog: list[Any] = []
        self._base = 0
        self.marker = Marker(self.path)
        self.rotations = 0
        self.schema_changes = 0
        self.lost = 0
        self.last_schema_change: dict[str, Any] | None = None

    # --- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return db

    async def open(self) -> None:
        """Connect; start reading the log at once when the file is in WAL mode."""
        if self._db is not None:
            return
        if not Path(self.path).is_file():
            raise CaptureError(f"sqlite open: no database file at {self.path}")
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-sqlite-wal")
        try:
            with mapped("open"):
                self._db = await asyncio.get_running_loop().run_in_executor(thread, self._connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        self._thread = thread
        await self._run("open", self._start)

    async def close(self) -> None:
        """Disconnect, give the old journal mode back where nobody holds the file, then
        note where reading stopped (see `_start`)."""
        thread, self._thread = self._thread, None
        conns = [c for c in (self._pin, self._db) if c is not None]
        self._pin = self._db = None
        if thread is not None:
            loop = asyncio.get_running_loop()
            for conn in conns:
                await loop.run_in_executor(thread, conn.close)
            if self._log is not None:
                given = await loop.run_in_executor(thread, self._give_back)
                gone = given or WalLog(self.path).size() == 0  # checkpointed and removed
                self.marker.save(None if gone else self._log.salts,
                                 0 if gone else self._log.frames)
            thread.shutdown(wait=False)
        self._log = self._trees = None
        self._positions.close()

    def positions(self) -> dict[str, tuple[int, int]]:
        """Where the log stands now, as (lower, upper) positions under its path (see
        `shadow.rows.sqlite_position`); empty while it cannot be read. A change's `mark`
        is its commit's position under the same name."""
        if self._log is None:
            return {}
        now = self._positions.now()
        return {} if now is None else {self.path: now}

    def _wal_mode(self) -> bool:
        return self._rows("PRAGMA journal_mode")[0][0] == "wal"

    def _start(self, switch: bool = False) -> None:
        """Hold the read transaction, then read the log as it stands and walk every
        table. What the log holds is the base, not reported, but for the commits made
        since the position a previous run saved, while the proxy was down: reported by
        the first drain when the log still holds them and none was copied back yet.
        `switch`: an installed database that `close()` gave its old journal mode back
        is switched to WAL mode first (a running proxy's drain does this)."""
        if self._pin is not None:
            return
        if not self._wal_mode() and not (switch and self._switch_to_wal()):
            return
        self._pin = self._connect()
        self._hold()
        self._log = WalLog(self.path)
        commits, _ = self._log.scan()
        base = self._log.frames
        base, lost = self.marker.resume(self._log.salts, base, self._log.backfilled() or 0)
        if lost:
            self._lose("writes made while the proxy was down were copied into the database "
                       "before they could be read")
        self._backlog = [c for c in commits if c.first > base]
        self._base = base
        self._rebuild(base)

    def _hold(self) -> None:
        assert self._pin is not None
        self._pin.execute("BEGIN")
        self._pin.execute("SELECT count(*) FROM sqlite_master").fetchall()

    def _rebuild(self, frame: int, keep: Iterable[str] = ()) -> None:
        """Read the catalogue and walk the tables it captures at `frame` (but those in
        `keep` whose layout is unchanged)."""
        assert self._log is not None
        header = DbHeader.parse(self._log.page(1, frame))
        self._cookie = header.schema_cookie
        if self._trees is None:
            self._trees = Trees(self._log.page, header.usable, header.encoding,
                                self._log.version)
        infos = self._introspect()
        wanted = [n for n, i in infos.items() if i.verifiable and self.rules.covers(n)]
        layouts = record_layouts(self._rows, {n: infos[n] for n in wanted}, self._layouts)
        self._trees.build(layouts, frame, keep=keep)

    # --- install, status ---------------------------------------------------------------

    async def introspect(self) -> dict[str, TableInfo]:
        return await self._run("introspect", self._introspect)

    def _introspect(self) -> dict[str, TableInfo]:
        infos, self._layouts = schema.read_tables(self._rows, kind_of_sqlite)
        return self._catalogue(infos)

    # --- drain -------------------------------------------------------------------------

    async def drain(self) -> list[RowChange]:
        """Every row change committed since the last drain, in commit order."""
        return await self._run("drain", self._drain)

    def _drain(self) -> list[RowChange]:
        if self._log is None:
            self._start(switch=True)
            if self._log is None:
                raise CaptureError(f"sqlite drain: {self.path} is not in WAL mode and "
                                   "cannot be switched to it")
        changes = self._read()
        if self._log.frames >= self.rotate_frames:
            changes += self._rotate()
        self.marker.save(self._log.salts, self._log.frames, throttle=True)
        return changes

    def _read(self) -> list[RowChange]:
        assert self._log is not None and self._trees is not None
        last = min(self._base, self._log.frames) if self._backlog else self._log.frames
        since, self._scanned_at = self._scanned_at, time.time()
        written = self._log.written()
        commits, restarted = self._log.scan()
        commits, self._backlog = self._backlog + commits, []
        if restarted:
            self._trees.forget_pages()
        if restarted and not self._expected_restart:
            self._lose("the log restarted before it was read")
            self._rebuild(0)
            last = 0
        elif restarted:
            last = 0
        self._expected_restart = False
        # The log keeps no time. Each commit found was made after the previous scan began
        # and before this one read the index (`read_at`). The file's modification time
        # is when its last frame was written, on the kernel's clock that may lag a tick:
        # the last commit's moment, within that tick, when no frame came while it was
        # read and none of a later transaction lies beyond it.
        upper = self._log.read_at
        quiet = (written is not None and written == self._log.written()
                 and not self._log.tail)
        last_since, last_at = since, upper
        if quiet and written is not None:
            last_since = max(written, since)
            last_at = max(min(written + WAL_TICK, upper), last_since)
        changes: list[RowChange] = []
        for number, commit in enumerate(commits, 1):
            skip: list[str] = []
            if 1 in commit.pages:
                skip = self._follow_schema(last, commit.last)
            found = self._trees.changes(commit.pages, last, commit.last)
            final = number == len(commits)
            low, high = (last_since, last_at) if final else (since, upper)
            mark = (self.path, self._positions.at(commit.salts, commit.last))
            changes += [c for change in found if change.table not in skip
                        for c in self._row_changes(change, high, low, mark)]
            last = commit.last
        return changes

    def _follow_schema(self, before: int, frame: int) -> list[str]:
        """When the commit ending at `frame` moved the schema cookie: the catalogue read
        again, the tables it created, altered, renamed or dropped walked afresh (their
        rows in that commit are not reported); returns those tables."""
        assert self._log is not None and self._trees is not None
        cookie = DbHeader.parse(self._log.page(1, frame)).schema_cookie
        if cookie == self._cookie:
            return []
        was, now = self._trees.catalogue(before), self._trees.catalogue(frame)
        moved = sorted(n for n in was.keys() | now.keys() if was.get(n) != now.get(n))
        keep = [n for n in self._trees.layouts if n not in moved]
        self._rebuild(frame, keep=keep)
        self.schema_changes += 1
        change = {"added": sorted(now.keys() - was.keys()),
                  "dropped": sorted(was.keys() - now.keys()),
                  "altered": sorted(n for n in moved if n in was and n in now),
                  "recaptured": sorted(n for n in moved if n in self._trees.layouts)}
        self.last_schema_change = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   **change}
        log.info("schema changed; capture follows it", extra={"path": self.path, **change})
        return moved

    def _rotate(self) -> list[RowChange]:
        """Let the log restart: under the write lock, read it to its end, let the
        checkpoint copy it all back, take the read transaction again."""
        assert self._pin is not None and self._db is not None
        self._db.execute("PRAGMA busy_timeout = 100")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return []
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        try:
            changes = self._read()
            self._pin.execute("COMMIT")
            self._pin.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._hold()
            self._expected_restart = True
            self.rotations += 1
        finally:
            self._db.execute("ROLLBACK")
        return changes

    def _lose(self, why: str) -> None:
        self.lost += 1
        log.warning("changes lost", extra={"count": 1, "why": why, "path": self.path})

    def _row_changes(self, change: Change, at: float, since: float | None,
                     mark: tuple[str, int]) -> list[RowChange]:
        info, layout = self._tables.get(change.table), self._layouts.get(change.table)
        if info is None or layout is None:
            return []
        return row_changes(change, info, layout.key_is_rowid, at, since, mark)
