"""The file beside a SQLite database that says its changes are read from the log.

The write-ahead log capture adds nothing to the database, so what it must remember lives
in `<database>-shadow.json`: that capture is installed, the journal mode the database had
before install (uninstall gives it back), and where reading stopped, so that the next
run reads on from there when the log still holds what was written while the proxy was
down. The database file's size and modification time are kept with it: a checkpoint
changes them, which tells that writes went into the file unread.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("shadow.rows")
SAVE_EVERY = 1.0
"""Seconds between two saves of the position while draining."""


class Marker:
    """The marker of the database at `database`."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = database + "-shadow.json"
        self._saved_at = float("-inf")

    def read(self) -> dict[str, Any] | None:
        """Its content, or None when there is none (or it is not a JSON object)."""
        try:
            found = json.loads(Path(self.path).read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def install(self, method: str, journal_mode: str) -> None:
        """Write it for a new install (the journal mode of an earlier install is kept)."""
        before = (self.read() or {}).get("journal_mode", journal_mode)
        Path(self.path).write_text(json.dumps({"method": method, "journal_mode": before}))

    def journal_mode(self) -> str | None:
        """The journal mode the database had before install (None when unknown)."""
        mode = (self.read() or {}).get("journal_mode")
        return mode if isinstance(mode, str) and mode.isalpha() else None

    def remove(self) -> dict[str, Any] | None:
        """Delete it; returns what it held."""
        found = self.read()
        Path(self.path).unlink(missing_ok=True)
        return found

    def file_state(self) -> list[int]:
        """The database file's size and modification time ([] when it cannot be read)."""
        try:
            found = os.stat(self.database)
        except OSError:
            return []
        return [found.st_size, found.st_mtime_ns]

    def save(self, salts: str | None, frames: int, *, throttle: bool = False) -> None:
        """Note that reading stopped after `frames` frames of the log with `salts` (None:
        no log). `throttle`: at most once every SAVE_EVERY seconds."""
        now = time.monotonic()
        if throttle and now - self._saved_at < SAVE_EVERY:
            return
        found = self.read()
        if found is None:
            return
        found["position"] = {"salts": salts, "frames": frames, "file": self.file_state()}
        try:
            Path(self.path).write_text(json.dumps(found))
        except OSError as exc:
            log.warning("capture position not saved", extra={"path": self.path, "why": str(exc)})
        self._saved_at = now

    def resume(self, salts: str | None, frames: int, copied: int) -> tuple[int, bool]:
        """Where reading goes on in a log with `salts` holding `frames` frames, `copied`
        of them already in the database file: (the frame after which it goes on, whether
        writes were lost). The saved position when the log still holds everything after
        it; else the log as it stands, lost when the database changed meanwhile."""
        saved = (self.read() or {}).get("position")
        if not isinstance(saved, dict):
            return frames, False
        at, was = saved.get("frames"), saved.get("salts")
        same_file = saved.get("file") == self.file_state()
        if isinstance(at, int) and at <= frames and copied <= at and (
                (was is not None and was == salts) or (was is None and at == 0 and same_file)):
            return at, False
        return frames, was != salts or not same_file


def leave_wal(db: sqlite3.Connection, mode: str | None) -> bool:
    """Give the database of `db` the journal mode `mode` when that is not WAL and no
    other connection holds the file open (SQLite refuses to leave WAL mode then); it
    never waits for the app's connections. True when given."""
    if mode is None or mode == "wal":
        return False
    (timeout,) = db.execute("PRAGMA busy_timeout").fetchone()
    db.execute("PRAGMA busy_timeout = 0")
    try:
        return db.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0] != "wal"
    except sqlite3.OperationalError:
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
