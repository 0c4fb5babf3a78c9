"""Rows of writes too entangled to compare as groups, verified change by change (pure).

When overlapping writes chain into a group larger than `rows.max_group`, comparing the
group as a whole would hold memory and verdicts without bound. Its changes come here
instead, one by one, as each backend's drain delivers them, and pair with the other
side's changes as they arrive:

- an insert pairs with an insert of the other side whose content is the same, compared
  as the row diff compares it (foreign keys through the key map, the surrogate key left
  out, a "now" stamp read against the moment each side made its change); the pair is
  learnt into the key map at once, so replies and later requests naming the row are read
  through it;
- an update or a delete pairs with the other side's change of the same kind to the same
  row (its key through the key map), in drain order, and so does an insert whose key the
  app chose (an upsert is an insert on one side, an update on the other); their images
  are compared once both are settled (below).

Each change carries the exchanges whose windows could hold it (`origin`). Once every one
of them has finished on both backends, the change is *settled*: its twin, if it has one,
was made inside the window of the same exchange, so it has been drained by then. A
settled change still unpaired is tried once more (a parent's pair may have come since:
the primary's waiting changes of its table are bucketed again first)
and is otherwise *left over*: a real difference, diffed with the other leftovers that the
same exchange's end settled, and charged to that exchange (one of those that could have
made it). A settled pair of such row changes whose images differ is left over too, unless a
later change of the same row is still pending (that one is compared instead: images are
read when drained).

Bounded: past `limit` unpaired changes per side, the oldest are dropped and counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from shadow.rows.keymap import Key, Pair, freeze
from shadow.rows.model import fold
from shadow.verdict import RowChange

PRIMARY, SHADOW = 0, 1


class Matcher(Protocol):
    """How changes of the two sides are compared (shadow.rows.match.ChangeMatcher)."""

    def bucket(self, change: RowChange, primary: bool) -> tuple | None: ...

    def same(self, primary: RowChange, shadow: RowChange) -> bool: ...

    def paired(self, primary: RowChange, shadow: RowChange) -> Pair | None: ...


@dataclass(slots=True, eq=False)
class Entry:
    """One change in the stream: its side, drain order, the exchanges that could have
    made it (`origin`) and those of them still running (`flows`)."""

    side: int
    seq: int
    change: RowChange
    origin: frozenset[int]
    flows: set[int]
    bucket: tuple | None = None
    twin: Entry | None = None
    gone: bool = False  # dropped past the bound, or handed back as left over

    @property
    def row(self) -> tuple[str, Key]:
        return fold(self.change.table), freeze(self.change.key)


@dataclass(slots=True)
class Settled:
    """What one exchange's end settled: the key pairs its changes made (its reply is read
    through them), the changes left over on each side, and the pairs verified."""

    pairs: list[Pair] = field(default_factory=list)
    primary: list[RowChange] = field(default_factory=list)
    shadow: list[RowChange] = field(default_factory=list)
    verified: int = 0


class Stream:
    """Unpaired changes of both sides, waiting for their twins or their exchanges' end."""

    def __init__(self, matcher: Matcher, limit: int = 4096) -> None:
        self.matcher = matcher
        self.limit = limit
        self.dropped = 0
        self.paired = 0
        self._buckets: tuple[dict[tuple, deque[Entry]], ...] = ({}, {})
        self._waiting: tuple[deque[Entry], ...] = (deque(), deque())
        self._by_flow: dict[int, list[Entry]] = {}
        self._pairs: dict[int, list[Pair]] = {}
        self._pending: dict[tuple[int, tuple[str, Key]], int] = {}

    def unpaired(self, side: int) -> int:
        return sum(1 for e in self._waiting[side] if e.twin is None and not e.gone)

    def inserting(self, table: str) -> bool:
        """Whether an insert into `table` (folded) still waits for its twin, on either side."""
        return any(e.twin is None and not e.gone and e.change.op == "insert"
                   and e.row[0] == table for waiting in self._waiting for e in waiting)

    def add(self, side: int, seq: int, change: RowChange, flows: Iterable[int]) -> Settled:
        """A drained change of `side` that one of `flows` (still running) made; what it
        settles at once when none of them is (normally nothing)."""
        origin = frozenset(flows)
        entry = Entry(side, seq, change, origin, set(origin))
        for flow in origin:
            self._by_flow.setdefault(flow, []).append(entry)
        self._count_pending(entry, 1)
        if not self._pair(entry):
            self._wait(entry)
        out = Settled()
        if not entry.flows:
            self._settle([entry], out)
        return out

    def release(self, flow: int) -> Settled:
        """`flow` finished on both backends: what its end settles."""
        settled = []
        for entry in self._by_flow.get(flow, []):
            entry.flows.discard(flow)
            if not entry.flows:
                settled.append(entry)
        out = Settled()
        self._settle(settled, out)
        self._by_flow.pop(flow, None)
        out.pairs = self._pairs.pop(flow, [])
        return out

    # --- pairing -------------------------------------------------------------------------

    def _pair(self, entry: Entry) -> bool:
        entry.bucket = self.matcher.bucket(entry.change, entry.side == PRIMARY)
        others = self._buckets[1 - entry.side].get(entry.bucket) if entry.bucket else None
        if not others:
            return False
        for other in list(others):
            if other.twin is not None or other.gone:
                others.remove(other)
                continue
            p, s = (entry, other) if entry.side == PRIMARY else (other, entry)
            if p.change.op != "insert" or self.matcher.same(p.change, s.change):
                others.remove(other)
                self._join(p, s)
                return True
        return False

    def _join(self, p: Entry, s: Entry) -> None:
        p.twin, s.twin = s, p
        self.paired += 1
        pair = self.matcher.paired(p.change, s.change)
        if pair is not None:
            for flow in p.origin | s.origin:
                if flow in self._by_flow:  # still running: its reply is read through it
                    self._pairs.setdefault(flow, []).append(pair)

    def _wait(self, entry: Entry) -> None:
        if entry.bucket is not None:
            self._buckets[entry.side].setdefault(entry.bucket, deque()).append(entry)
        waiting = self._waiting[entry.side]
        waiting.append(entry)
        while waiting and (waiting[0].twin is not None or waiting[0].gone):
            waiting.popleft()
        while len(waiting) > self.limit:
            old = waiting.popleft()
            if old.twin is None and not old.gone:
                old.gone = True
                self.dropped += 1
                self._count_pending(old, -1)
                self._unbucket(old)

    def _unbucket(self, entry: Entry) -> None:
        found = self._buckets[entry.side].get(entry.bucket) if entry.bucket else None
        if found is not None and entry in found:
            found.remove(entry)
            if not found:
                del self._buckets[entry.side][entry.bucket]

    def _rebucket(self, side: int, table: str) -> None:
        """Bucket `side`'s unpaired changes of `table` again: the key pairs learnt since
        they arrived may translate their foreign keys otherwise now."""
        for entry in self._waiting[side]:
            if entry.twin is None and not entry.gone and entry.row[0] == table:
                bucket = self.matcher.bucket(entry.change, entry.side == PRIMARY)
                if bucket != entry.bucket:
                    self._unbucket(entry)
                    entry.bucket = bucket
                    if bucket is not None:
                        self._buckets[side].setdefault(bucket, deque()).append(entry)

    # --- settling ------------------------------------------------------------------------

    def _count_pending(self, entry: Entry, step: int) -> None:
        slot = (entry.side, entry.row)
        count = self._pending.get(slot, 0) + step
        if count > 0:
            self._pending[slot] = count
        else:
            self._pending.pop(slot, None)

    def _settle(self, entries: list[Entry], out: Settled) -> None:
        for entry in entries:
            if entry.gone:
                continue
            self._count_pending(entry, -1)
            if entry.twin is None:
                self._unbucket(entry)
                self._rebucket(PRIMARY, entry.row[0])
                if not self._pair(entry):
                    entry.gone = True
                    (out.primary if entry.side == PRIMARY else out.shadow).append(entry.change)
                    continue
            twin = entry.twin
            assert twin is not None
            if entry.side == PRIMARY:
                out.verified += 1
            if entry.bucket is not None and entry.bucket[0] != "insert" and not twin.flows:
                self._compare_settled(entry, twin, out)

    def _compare_settled(self, entry: Entry, twin: Entry, out: Settled) -> None:
        """Both changes of an update or delete pair are settled: their images are the
        row's as drained; differing ones are left over unless a later change of the row
        is still pending on either side."""
        p, s = (entry, twin) if entry.side == PRIMARY else (twin, entry)
        if self.matcher.same(p.change, s.change):
            return
        if (PRIMARY, p.row) in self._pending or (SHADOW, s.row) in self._pending:
            return
        out.verified -= 1
        out.primary.append(p.change)
        out.shadow.append(s.change)
