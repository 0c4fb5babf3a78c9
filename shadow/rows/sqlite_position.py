"""Where a SQLite write-ahead log stands: a clock for changes captured from it.

The log keeps no time, but it keeps an order. Every commit ends at a frame, and SQLite
publishes the last committed frame in the header of the shared-memory index (`-shm`)
before `COMMIT` returns. A **position** is that frame number together with the log's
generation (the log restarts from frame 1 with new salts; each restart is a new
generation):

    position = generation << 32 | frame

The proxy reads the position in the microsecond before it sends a request and again when
the reply has arrived (`LogPositions.now`, a read of 96 bytes of mapped memory, no system
call). A commit the app made while serving that exchange ends at a position strictly
after the first reading and at or before the second, whatever the clocks say, so a
change is placed among the exchanges by the order of the log itself
(`shadow.writes.windows`). A commit's own position comes from the frames the capture
read (`LogPositions.at`).

The index header is written twice, the second copy first; a reader between the two
writes sees them differ. Both are read: the earlier as the lower bound, the later as the
upper, which can only widen a window, never lose a commit from it. Generations are
numbered in the order their salts are first seen, by either the proxy or the capture
(a restart needs every frame of the log before it read by the capture, so no later
salt can be seen before an earlier one); the numbering is this process's own.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

HEADER = 48
"""Bytes of one copy of the index header (`WalIndexHdr`)."""
_MXFRAME = 16
_SALTS = 32
_INIT = 12


class LogPositions:
    """Positions in the log of the SQLite database at `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._generations: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def generation(self, salts: bytes) -> int:
        """The generation of the log whose header holds `salts` (numbered when first seen)."""
        found = self._generations.get(salts)
        if found is not None:
            return found
        with self._lock:
            return self._generations.setdefault(salts, len(self._generations))

    def at(self, salts: bytes, frame: int) -> int:
        """The position of the commit ending at `frame` of the log with `salts`."""
        return self.generation(salts) << 32 | frame

    def now(self) -> tuple[int, int] | None:
        """The position the log stands at, as (lower, upper) bound; None while the index
        cannot be read (no `-shm` yet, or it is not initialised)."""
        view = self._map if self._map is not None else self._open()
        if view is None:
            return None
        try:
            data = view[:2 * HEADER]
        except ValueError:  # closed under us
            return None
        first, second = data[:HEADER], data[HEADER:]
        if not first[_INIT] or not second[_INIT]:
            return None
        a, b = self._position(first), self._position(second)
        return (a, b) if a <= b else (b, a)

    def _position(self, header: bytes) -> int:
        (frame,) = struct.unpack_from("=I", header, _MXFRAME)
        return self.at(header[_SALTS:_SALTS + 8], frame)

    def _open(self) -> mmap.mmap | None:
        try:
            fd = os.open(self.path + "-shm", os.O_RDONLY)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < 2 * HEADER:
                return None
            self._map = mmap.mmap(fd, 2 * HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        return self._map

    def close(self) -> None:
        view, self._map = self._map, None
        if view is not None:
            view.close()
