"""What both SQLite captures share: their work runs whole in one worker thread.

Each operation (a drain, an install, a status) is one hop from the event loop to the
capture's thread, however many statements it takes, one operation at a time; sqlite3
errors come back as CaptureError. Also shared: write transactions and the sequence read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from shadow.rows import sqlite_schema as schema
from shadow.rows.capture import CaptureError

T = TypeVar("T")


@contextmanager
def mapped(action: str) -> Iterator[None]:
    """Translate sqlite3 errors into CaptureError (the one place this happens)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise CaptureError(f"sqlite {action}: {exc}") from exc


class OneThread:
    """A connection (`_db`) used only from one worker thread (`_thread`)."""

    _db: sqlite3.Connection | None
    _thread: ThreadPoolExecutor | None
    _lock: asyncio.Lock

    async def _run(self, action: str, work: Callable[[], T]) -> T:
        """`work()` in the capture's thread, alone, sqlite3 errors mapped."""
        if self._db is None or self._thread is None:
            raise CaptureError("sqlite capture is not open")
        async with self._lock:
            with mapped(action):
                return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        assert self._db is not None
        return self._db.execute(sql, tuple(params)).fetchall()

    def _exec(self, sql: str) -> None:
        assert self._db is not None
        self._db.execute(sql)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back when the body raises."""
        self._exec("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            try:
                self._exec("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._exec("COMMIT")

    async def sequence_position(self, table: str, column: str) -> int | None:
        """An AUTOINCREMENT table's `sqlite_sequence` entry (an ignored insert burns a
        value there too); any other rowid table reuses its highest key plus one."""
        return await self._run("sequence", lambda: schema.sequence_position(
            self._rows, table, column))
