"""A SQLite write-ahead log read as it grows: frames, commits, page versions (file I/O only).

In WAL mode SQLite appends every page a transaction changed to the `-wal` file, the last
frame of a transaction marked as its commit; readers and the checkpoint find pages there
before the database file. A frame is valid when its salts are the header's and its
running checksum matches (a frame still being written never does). The log restarts
from its first frame, with new salts, only after every frame was copied back into the
database and no reader is using it; `sqlite_walcapture` holds a read transaction so that
this never happens before its frames were read.

    WalLog.scan()       the commits appended since the last scan (each: its frames)
    WalLog.page(p, f)   page p as it was once frame f was written (the WAL, else the file)
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from dataclasses import dataclass, field

MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER = 32
FRAME_HEADER = 24
_MASK = 0xFFFFFFFF


def checksum(data: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of `data` (a multiple of 8 bytes) continued from (s0, s1)."""
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1


@dataclass(frozen=True, slots=True)
class Commit:
    """One committed transaction: `first`..`last` its frame numbers (1-based), `pages`
    the pages it wrote, `size` the database's size in pages after it, `salts` those of
    the log it was written to."""

    first: int
    last: int
    pages: frozenset[int]
    size: int
    salts: bytes = b""


@dataclass(slots=True)
class _Header:
    big: bool
    page_size: int
    salts: bytes
    start: tuple[int, int]


@dataclass
class WalLog:
    """The `-wal` file of the database at `path`."""

    path: str
    header: _Header | None = None
    frames: int = 0
    #: The last scan stopped before frames of a transaction still being written.
    tail: bool = False
    #: A moment after every commit the last scan found had been made.
    read_at: float = 0.0
    _sum: tuple[int, int] | None = (0, 0)
    _pending: list[int] = field(default_factory=list)
    _versions: dict[int, list[int]] = field(default_factory=dict)

    @property
    def wal_path(self) -> str:
        return self.path + "-wal"

    def size(self) -> int:
        """The WAL file's length in bytes (0 when there is none)."""
        try:
            return os.path.getsize(self.wal_path)
        except OSError:
            return 0

    @property
    def salts(self) -> str | None:
        """The current log's salts (hex): they change each time the log restarts."""
        return self.header.salts.hex() if self.header is not None else None

    def backfilled(self) -> int | None:
        """How many frames the checkpoint has copied into the database file, from the
        shared-memory index beside it (`-shm`, in the host's byte order), or None."""
        try:
            with open(self.path + "-shm", "rb") as shm:
                shm.seek(96)
                data = shm.read(4)
        except OSError:
            return None
        return struct.unpack("=I", data)[0] if len(data) == 4 else None

    def written(self) -> float | None:
        """When the log file was last written (seconds since the epoch), None if absent."""
        try:
            return os.stat(self.wal_path).st_mtime_ns / 1e9
        except OSError:
            return None

    def scan(self) -> tuple[list[Commit], bool]:
        """The commits appended since the last scan, and whether the log restarted since
        (its header has new salts: every frame read before is in the database file now,
        and the frame numbers begin again)."""
        try:
            with open(self.wal_path, "rb") as wal:
                head = wal.read(WAL_HEADER)
                header = _parse_header(head)
                if header is None:
                    return [], False
                restarted = self.header is not None and header.salts != self.header.salts
                if self.header is None or restarted:
                    self._reset(header)
                return self._read(wal, header), restarted
        except FileNotFoundError:
            return [], False

    def _reset(self, header: _Header) -> None:
        self.header = header
        self.frames = 0
        self._sum = header.start
        self._pending = []
        self._versions = {}

    def committed(self) -> int | None:
        """The last committed frame, as the shared-memory index beside the log says: its
        header is kept twice (a reader that finds both copies equal has a whole one), its
        numbers in the host's byte order; None when there is none, or it is not this log's."""
        try:
            with open(self.path + "-shm", "rb") as shm:
                data = shm.read(96)
        except OSError:
            return None
        if len(data) < 96 or data[:48] != data[48:] or not data[12] or self.header is None:
            return None
        if data[32:40] != self.header.salts:  # copied as they are in the log's header
            return None
        return struct.unpack_from("=I", data, 16)[0]

    def _read(self, wal, header: _Header) -> list[Commit]:
        """Frames after the last commit read: up to the index's last committed frame
        (salts checked), or, with no index, as far as the checksums hold."""
        stride = FRAME_HEADER + header.page_size
        limit = self.committed()
        self.read_at = time.time()
        if limit is None and self._sum is None:
            self._sum = self._sum_to(wal, header, self.frames)
        wal.seek(WAL_HEADER + self.frames * stride)
        commits = []
        running = self._sum
        number = self.frames
        self.tail = False
        while True:
            frame = wal.read(stride)
            if len(frame) < stride or frame[8:16] != header.salts:
                break
            if limit is not None and number >= limit:
                self.tail = True  # a frame of a transaction not committed yet
                break
            number += 1
            if limit is None:
                assert running is not None
                running = checksum(frame[:8], *running, header.big)
                running = checksum(frame[FRAME_HEADER:], *running, header.big)
                if struct.unpack_from(">II", frame, 16) != running:
                    break
            pgno, size = struct.unpack_from(">II", frame, 0)
            self._pending.append(pgno)
            if size:
                first = self.frames + 1
                for at, page in enumerate(self._pending, first):
                    self._versions.setdefault(page, []).append(at)
                self.frames += len(self._pending)
                commits.append(Commit(first, self.frames, frozenset(self._pending), size,
                                      header.salts))
                self._pending = []
                self._sum = running if limit is None else None
        self._pending = []
        if limit is None:
            self.read_at = time.time()
        return commits

    def _sum_to(self, wal, header: _Header, frames: int) -> tuple[int, int]:
        """The running checksum after `frames` frames (read again from the start)."""
        stride = FRAME_HEADER + header.page_size
        running = header.start
        wal.seek(WAL_HEADER)
        for _ in range(frames):
            frame = wal.read(stride)
            running = checksum(frame[:8], *running, header.big)
            running = checksum(frame[FRAME_HEADER:], *running, header.big)
        return running

    def version(self, pgno: int, frame: int) -> int:
        """Which version `page(pgno, frame)` reads: its frame, or 0 for the file's copy."""
        versions = self._versions.get(pgno, ())
        at = bisect.bisect_right(versions, frame)
        return versions[at - 1] if at else 0

    def page(self, pgno: int, frame: int) -> bytes:
        """Page `pgno` as it was once frame `frame` was written: its last frame up to
        there, else the database file's copy (zeros for a page past its end)."""
        size = self.header.page_size if self.header is not None else self._file_page_size()
        versions = self._versions.get(pgno, ())
        at = bisect.bisect_right(versions, frame)
        if at:
            offset = WAL_HEADER + (versions[at - 1] - 1) * (FRAME_HEADER + size) + FRAME_HEADER
            return _read_at(self.wal_path, offset, size)
        return _read_at(self.path, (pgno - 1) * size, size)


    def _file_page_size(self) -> int:
        (size,) = struct.unpack(">H", _read_at(self.path, 16, 2))
        return 65536 if size == 1 else size


def _read_at(path: str, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    return data + bytes(size - len(data))


def _parse_header(head: bytes) -> _Header | None:
    """The WAL header, or None while it is missing, short or not yet valid."""
    if len(head) < WAL_HEADER:
        return None
    magic, _version, page_size = struct.unpack_from(">III", head, 0)
    if magic not in MAGIC:
        return None
    big = magic & 1 == 1
    start = checksum(head[:24], 0, 0, big)
    if struct.unpack_from(">II", head, 24) != start:
        return None
    return _Header(big, page_size or 65536, head[16:24], start)
