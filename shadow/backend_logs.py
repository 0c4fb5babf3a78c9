"""A build's own account of an exchange: the lines its logs gained while it served it.

When the candidate answers 500 the reply usually says "An unexpected error occurred";
the cause (`syntax error at or near ")"`, `can't compare offset-naive and offset-aware
datetimes`) is in the app's log or in the database server's log, written while the
exchange ran. A backend may name files to follow (`log_files`: the app's log, the
PostgreSQL server's log), read like `tail -F` without changing the app: from their end
at start-up, again after rotation or truncation. Each line is kept with the moment it was
read, in a bounded buffer, and a sample takes the lines read while its exchange ran on
that backend (plus the poll interval), and every line that names the exchange's id.
The proxy sends that id to both builds in a header (`proxy.exchange_header`,
`X-Shadow-Exchange`); an app that logs it makes the match exact: a line naming another
exchange is left out of this one's window.

Log lines are free text and may carry personal values, so only their shape is kept:
quoted strings, numbers, e-mail addresses, long tokens and the values in `Key (col)=(...)`
are replaced by placeholders here; shadow.privacy.logs then keeps only the words known to
be no value (the database's, the runtime's, `[privacy] log_words`) before a sample holds
a line. That keeps `duplicate key value violates unique constraint "<text>"` and `invalid
input syntax for type integer: "<text>"` readable while `ana@example.com`, or a name in
`Failing row contains (...)`, never reaches the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from shadow.tasks import cancelled

MAX_LINE = 500
"""Characters kept of one line (after masking)."""
MASKS = ("<email>", "<value>", "<token>", "<text>", "<n>")
"""The placeholders masking writes."""

_MASKS = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\)=\([^)]*\)"), ")=(<value>)"),
    (re.compile(r"'(?:[^'\\]|\\.)*'"), "'<text>'"),
    (re.compile(r'"(?:[^"\\]|\\.)*"'), '"<text>"'),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b|\b[A-Za-z0-9_-]{24,}\b"), "<token>"),
    (re.compile(r"(?<![\w.])[+-]?\d+(?:[.:/-]\d+)*(?![\w])"), "<n>"),
)


def mask(line: str) -> str:
    """The shape of a log line: values replaced by placeholders, words kept."""
    for pattern, placeholder in _MASKS:
        line = pattern.sub(placeholder, line)
    return line[:MAX_LINE]


class LogFollower:
    """Follows some files of one backend; keeps (moment read, masked line) pairs."""

    def __init__(self, paths: Iterable[str], *, keep: int = 2000, every: float = 0.2) -> None:
        self.paths = [Path(p) for p in paths]
        self.every = every
        self.lines: deque[tuple[float, str, str]] = deque(maxlen=keep)  # (at, masked, raw id)
        self._at: dict[Path, tuple[int, int]] = {}  # path -> (inode, offset)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin at the current end of each file (what was there before is history)."""
        for path in self.paths:
            with contextlib.suppress(OSError):
                st = path.stat()
                self._at[path] = (st.st_ino, st.st_size)
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="shadow-logs")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.poll()

    def poll(self) -> None:
        """Read what each file gained since the last poll (a new or shorter file is read
        from its start: it was rotated or truncated)."""
        now = time.time()
        for path in self.paths:
            try:
                st = path.stat()
            except OSError:
                continue
            inode, offset = self._at.get(path, (st.st_ino, 0))
            if st.st_ino != inode or st.st_size < offset:
                offset = 0
            if st.st_size == offset:
                self._at[path] = (st.st_ino, offset)
                continue
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(min(st.st_size - offset, 1 << 20))
            complete = data.rfind(b"\n") + 1
            self._at[path] = (st.st_ino, offset + complete)
            for raw in data[:complete].splitlines():
                text = raw.decode("utf-8", "replace").rstrip()
                if text:
                    self.lines.append((now, mask(text), text))

    def during(self, start: float, end: float, exchange_id: str = "") -> list[str]:
        """The masked lines naming `exchange_id`, and those read between `start` and `end`
        (plus one poll interval, since a line is stamped when it is read) that name no
        other exchange of this proxy (an app that logs the id says whose a line is)."""
        until = end + self.every + 0.05
        mine, others = _id_patterns(exchange_id)
        found = []
        for at, masked, raw in self.lines:
            if mine is not None and mine.search(raw):
                found.append(masked)
            elif start <= at <= until and (others is None or not others.search(raw)):
                found.append(masked)
        return found


def _id_patterns(exchange_id: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(this exchange's id, any id of the same proxy) as patterns that do not match inside
    a longer id: `a1b2c3d4-7` is not `a1b2c3d4-70`. Ids are `<boot>-<n>` (shadow.proxy)."""
    if not exchange_id:
        return None, None
    boot, _, number = exchange_id.rpartition("-")
    mine = re.compile(rf"(?<![\w-]){re.escape(exchange_id)}(?![\w-])")
    if not boot or not number.isdigit():
        return mine, None
    return mine, re.compile(rf"(?<![\w-]){re.escape(boot)}-\d+(?![\w-])")


def followers(log_files: dict[str, list[str]]) -> dict[str, LogFollower]:
    """One follower per backend that names log files (paths may not exist yet)."""
    return {backend: LogFollower(paths) for backend, paths in log_files.items() if paths}
