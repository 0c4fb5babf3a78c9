"""SQLite's file format, read from raw pages (pure: bytes in, values out).

Only what reading row changes from the write-ahead log needs: the database header, the
four b-tree page kinds, where a cell's payload lies (local part and overflow chain) and
the record format a row is stored in. The format is SQLite's documented, stable one
(https://www.sqlite.org/fileformat2.html), unchanged since 3.0.

    DbHeader       page size, usable size, text encoding, schema cookie, WAL or not
    Page           one b-tree page: its kind, cells, children
    Cell           one cell: rowid and/or payload (its local part, first overflow page)
    decode_record  a record's bytes -> the column values it stores
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

TABLE_LEAF, TABLE_INTERIOR, INDEX_LEAF, INDEX_INTERIOR = 0x0D, 0x05, 0x0A, 0x02
BTREE_KINDS = frozenset({TABLE_LEAF, TABLE_INTERIOR, INDEX_LEAF, INDEX_INTERIOR})
HEADER_SIZE = 100
_ENCODINGS = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}
_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


class FormatError(ValueError):
    """Bytes that are not what the SQLite file format says they should be."""


@dataclass(frozen=True, slots=True)
class DbHeader:
    """The first 100 bytes of a database: `usable` is the page size less the bytes each
    page reserves at its end; `wal` is true in WAL mode (read/write versions 2)."""

    page_size: int
    usable: int
    encoding: str
    schema_cookie: int
    wal: bool

    @classmethod
    def parse(cls, data: bytes) -> DbHeader:
        if len(data) < HEADER_SIZE or not data.startswith(b"SQLite format 3\x00"):
            raise FormatError("not a SQLite database header")
        (size,) = struct.unpack_from(">H", data, 16)
        page_size = 65536 if size == 1 else size
        (cookie,) = struct.unpack_from(">I", data, 40)
        (encoding,) = struct.unpack_from(">I", data, 56)
        return cls(page_size, page_size - data[20], _ENCODINGS.get(encoding, "utf-8"),
                   cookie, data[18] == 2 and data[19] == 2)


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The 64-bit two's complement varint at `pos`, and the position after it."""
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return _signed(value), pos + i + 1
    value = (value << 8) | data[pos + 8]
    return _signed(value), pos + 9


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell. `rowid`: a table cell's key (None in an index cell); `size` the whole
    payload's length, `local` its part on this page, `overflow` the first overflow page
    (0 when it all fits); `child` the page left of it in an interior page (0 in a leaf)."""

    rowid: int | None
    size: int
    local: bytes
    overflow: int
    child: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    """One b-tree page (`kind` is one of the four page kinds, or 0 for any other page:
    freelist, overflow, pointer map, a page never written). `children`: every child an
    interior page points at, the right-most last."""

    kind: int
    cells: tuple[Cell, ...]
    children: tuple[int, ...]

    @property
    def leaf(self) -> bool:
        return self.kind in (TABLE_LEAF, INDEX_LEAF)

    @property
    def table(self) -> bool:
        return self.kind in (TABLE_LEAF, TABLE_INTERIOR)

    @classmethod
    def parse(cls, data: bytes, pgno: int, usable: int) -> Page:
        """Page `pgno` from its bytes. Raises FormatError where a b-tree page is broken."""
        head = HEADER_SIZE if pgno == 1 else 0
        kind = data[head] if len(data) > head else 0
        if kind not in BTREE_KINDS:
            return cls(0, (), ())
        (count,) = struct.unpack_from(">H", data, head + 3)
        interior = kind in (TABLE_INTERIOR, INDEX_INTERIOR)
        pointers = head + (12 if interior else 8)
        try:
            offsets = struct.unpack_from(f">{count}H", data, pointers)
            cells = tuple(_cell(data, kind, offset, usable) for offset in offsets)
        except (struct.error, IndexError) as exc:
            raise FormatError(f"page {pgno}: broken b-tree page ({exc})") from exc
        children: tuple[int, ...] = ()
        if interior:
            (right,) = struct.unpack_from(">I", data, head + 8)
            children = (*(cell.child for cell in cells), right)
        return cls(kind, cells, children)


def leaf_cells(data: bytes, pgno: int, usable: int) -> tuple[int, frozenset[bytes]]:
    """A leaf page's kind and its cells as byte strings, each from its start to the next
    cell's (or the page's usable end): a cell's bytes and whatever free space follows it,
    enough to tell the cells two versions of a page share without parsing them (parse
    one with `cell_at`). Any other page: (its kind, no cells)."""
    head = HEADER_SIZE if pgno == 1 else 0
    kind = data[head] if len(data) > head else 0
    if kind not in (TABLE_LEAF, INDEX_LEAF):
        return kind if kind in BTREE_KINDS else 0, frozenset()
    (count,) = struct.unpack_from(">H", data, head + 3)
    try:
        offsets = sorted(struct.unpack_from(f">{count}H", data, head + 8))
    except struct.error as exc:
        raise FormatError(f"page {pgno}: broken b-tree page ({exc})") from exc
    if not offsets:
        return kind, frozenset()
    ends = [*offsets[1:], usable]
    return kind, frozenset(data[start:end] for start, end in zip(offsets, ends, strict=True))


def cell_at(data: bytes, kind: int, usable: int) -> Cell:
    """The cell at the start of `data` (one of `leaf_cells`)."""
    try:
        return _cell(data, kind, 0, usable)
    except (struct.error, IndexError) as exc:
        raise FormatError(f"broken cell ({exc})") from exc


def _cell(data: bytes, kind: int, pos: int, usable: int) -> Cell:
    if kind == TABLE_LEAF and data[pos] < 0x80 and data[pos + 1] < 0x80:
        size, rowid = data[pos], data[pos + 1]  # the usual small row: two one-byte varints
        if pos + 2 + size > len(data):
            raise IndexError(f"cell at {pos} runs past the page")
        return Cell(rowid, size, data[pos + 2:pos + 2 + size], 0)
    child = 0
    if kind in (TABLE_INTERIOR, INDEX_INTERIOR):
        (child,) = struct.unpack_from(">I", data, pos)
        pos += 4
    if kind == TABLE_INTERIOR:
        rowid, _ = varint(data, pos)
        return Cell(rowid, 0, b"", 0, child)
    size, pos = varint(data, pos)
    rowid = None
    if kind == TABLE_LEAF:
        rowid, pos = varint(data, pos)
    local = local_size(size, usable, table=kind == TABLE_LEAF)
    overflow = 0
    if local < size:
        (overflow,) = struct.unpack_from(">I", data, pos + local)
    if pos + local > len(data):
        raise IndexError(f"cell at {pos} runs past the page")
    return Cell(rowid, size, bytes(data[pos:pos + local]), overflow, child)


def local_size(size: int, usable: int, *, table: bool) -> int:
    """How many of a payload's `size` bytes are kept on its b-tree page."""
    most = usable - 35 if table else (usable - 12) * 64 // 255 - 23
    if size <= most:
        return size
    least = (usable - 12) * 32 // 255 - 23
    keep = least + (size - least) % (usable - 4)
    return keep if keep <= most else least


def decode_record(payload: bytes, encoding: str = "utf-8") -> list[Any]:
    """The values of one record: None, int, float, str (in the database's encoding) or
    bytes, in the order they are stored."""
    header_size, pos = varint(payload, 0)
    types = []
    while pos < header_size:
        serial, pos = varint(payload, pos)
        types.append(serial)
    values: list[Any] = []
    at = header_size
    for serial in types:
        if serial == 0:
            values.append(None)
        elif serial in _INT_SIZES:
            width = _INT_SIZES[serial]
            values.append(int.from_bytes(payload[at:at + width], "big", signed=True))
            at += width
        elif serial == 7:
            values.append(struct.unpack_from(">d", payload, at)[0])
            at += 8
        elif serial in (8, 9):
            values.append(serial - 8)
        elif serial >= 12:
            width = (serial - 12) // 2
            raw = payload[at:at + width]
            values.append(bytes(raw) if serial % 2 == 0 else raw.decode(encoding, "replace"))
            at += width
        else:
            raise FormatError(f"reserved serial type {serial}")
    if at > len(payload):
        raise FormatError("record runs past its payload")
    return values
