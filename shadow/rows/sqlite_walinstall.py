"""Install, status and the journal mode of the SQLite capture that reads the log.

Install adds nothing to the app's schema: it switches the database to WAL mode, writes
the marker beside it (`sqlite_marker`) and removes a trigger capture an earlier install
left. The database is in WAL mode while a proxy reads it; a capture that closes gives it
the journal mode it had before install where no connection of the app holds the file
(see `sqlite_walcapture`), and the next running proxy's first drain switches it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from shadow.rows import sqlite_schema as schema
from shadow.rows.capture import CaptureError, CaptureStatus
from shadow.rows.sqlite_marker import leave_wal

log = logging.getLogger("shadow.rows")
METHOD = "wal"
GIVE_BACK_PAUSE = 0.02
"""Seconds between two tries to give the old journal mode back."""


class WalInstall:
    """What `SqliteWalCapture` does to the database file beside reading it."""

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        """Switch the file to WAL mode and remove a trigger capture left by an earlier
        install. Every table the rules cover is captured (the log holds them all), so
        `tables` is only checked."""
        wanted = None if tables is None else list(tables)

        def install() -> None:
            self._selected(self._introspect(), wanted)
            was = self._rows("PRAGMA journal_mode")[0][0]
            if was != "wal":
                mode = self._rows("PRAGMA journal_mode = WAL")[0][0]
                if mode != "wal":
                    raise CaptureError(
                        f"sqlite install: cannot switch {self.path} to WAL mode (it stays "
                        f"{mode}); set rows.sqlite_capture = \"triggers\" to capture with "
                        "triggers instead")
            self.reason = ("the write-ahead log (nothing added to the database" + (
                f"; WAL mode while the proxy reads it, journal_mode={was} otherwise where no "
                "connection of the app holds the file)" if was != "wal" else ")"))
            self._remove_triggers()
            self.marker.install(METHOD, was)
            self._start()

        await self._run("install", install)
        return await self.status()

    def _remove_triggers(self) -> None:
        """Drop what a trigger capture installed earlier, if anything (no write lock
        taken when there is nothing)."""
        if schema.read_triggers(self._rows) or self._rows(schema.HAS_LOG):
            with self._transaction():
                schema.drop_capture(self._rows)

    async def uninstall(self) -> None:
        """Stop reading the log, remove any trigger capture and the marker, and give the
        database back the journal mode it had before install where nobody holds it
        open (else it stays in WAL mode, which SQLite apps run in unchanged)."""
        def uninstall() -> None:
            self._remove_triggers()
            if self._pin is not None:
                self._pin.close()
                self._pin = None
            self._log = self._trees = None
            before = self.marker.journal_mode()
            self.marker.remove()
            if before not in (None, "wal") and not leave_wal(self._db, before):
                log.warning("journal mode left in WAL", extra={
                    "path": self.path, "why": "a connection of the app holds the file open"})

        await self._run("uninstall", uninstall)

    async def status(self) -> CaptureStatus:
        return await self._run("status", self._status)

    def _status(self) -> CaptureStatus:
        infos = self._introspect()
        wal = self._wal_mode()
        verifiable = [n for n, i in infos.items() if i.verifiable]
        faults = []
        marked = self.marker.read() is not None
        given_back = self.marker.journal_mode()
        if marked and not wal and given_back in (None, "wal"):
            faults.append("the database is not in WAL mode: `shadow rows install` switches it")
        if schema.read_triggers(self._rows) or self._rows(schema.HAS_LOG):
            faults.append("triggers of an earlier trigger capture remain (the app pays for "
                          "them): `shadow rows install` removes them")
        wal_bytes = self._log.size() if self._log is not None else 0
        detail = (f"reads the write-ahead log, nothing in the database; the log is "
                  f"{wal_bytes / 1e6:.1f} MB, restarted {self.rotations} time(s) by the capture"
                  if wal else f"reads the write-ahead log, nothing in the database; in "
                  f"journal_mode={given_back} until a running proxy switches it to WAL")
        return CaptureStatus(
            log_table=marked,
            captured=tuple(n for n in verifiable if self.rules.covers(n)) if marked else (),
            uncaptured=(),
            unverifiable={n: i.reason for n, i in infos.items() if not i.verifiable},
            excluded=tuple(n for n in verifiable if not self.rules.covers(n)),
            method=METHOD, detail=detail, faults=tuple(faults))

    def _switch_to_wal(self) -> bool:
        """WAL mode again for an installed database; the writes it took in its old mode
        while nobody read it are counted lost (the file changed since `close()`)."""
        if (self.marker.read() or {}).get("method") != METHOD:
            return False
        _, lost = self.marker.resume(None, 0, 0)
        if lost:
            self._lose("writes made while the proxy was down, in the database's own journal "
                       "mode, cannot be read")
        if self._rows("PRAGMA journal_mode = WAL")[0][0] != "wal":
            return False
        self.marker.save(None, 0)  # switching rewrote the file's header
        return True

    def _give_back(self, tries: int = 5) -> bool:
        """The journal mode of before install, where nobody holds the file (`leave_wal`);
        a request of the app in flight at that moment is waited out a few times."""
        mode = self.marker.journal_mode()
        if mode in (None, "wal"):
            return False
        for attempt in range(tries):
            db = self._connect()
            try:
                if leave_wal(db, mode):
                    return True
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    return False
            finally:
                db.close()
            if attempt + 1 < tries:
                time.sleep(GIVE_BACK_PAUSE)
        return False
