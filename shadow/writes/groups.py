"""Groups: exchanges whose changes cannot be told apart, on either backend.

Every exchange sent to a backend with row capture is a `Member` of a group of one. A
drained change that may belong to several windows joins their exchanges into one group
(union-find), on either backend: two writes that overlapped on the primary and ran one
after the other on the shadow are one group on both. A group is *final* when every window
of every member is final on every backend it was sent to; then its changes, per backend,
are the union of its members' and are compared as a whole (`on_final`).

A group of more than `max_members` exchanges is not compared as a whole (`overflow`): a
chain of overlapping writes under sustained load could otherwise hold memory and verdicts
without bound. Its changes go, with the exchanges each may belong to, to `on_stream`
(shadow.rows.stream verifies them one by one, as they arrive), and its members are let go
as they finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shadow.rows.keymap import Pair
from shadow.rows.model import fold
from shadow.verdict import Difference, RowChange

Placed = tuple[int, RowChange, tuple[int, ...]]
"""A change of a group: its drain order, the change, the exchanges it may belong to."""


@dataclass(slots=True, eq=False)
class Member:
    """One exchange in the attribution: the backends it still waits for, and its pair
    (None when the shadow never receives it)."""

    flow: int
    method: str
    route: str
    primary: str
    shadow: str | None
    writes: bool
    pair: Any = None
    waiting: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class Group:
    """Exchanges compared as a whole, and the changes of each backend, in drain order
    (none once `overflow`: they went to the stream)."""

    members: list[Member]
    changes: dict[str, list[Placed]] = field(default_factory=dict)
    unfinished: int = 0
    overflow: bool = False
    released: list[int] = field(default_factory=list)
    paired_at: tuple[int, ...] = ()  # how many changes each side had when paired early

    def rows(self, backend: str) -> tuple[RowChange, ...]:
        return tuple(item[1] for item in sorted(self.changes.get(backend, ()),
                                                key=lambda item: item[0]))

    @property
    def exact(self) -> bool:
        return len(self.members) == 1


@dataclass(frozen=True, slots=True)
class GroupRows:
    """What one exchange's group wrote on each side, and how the two compare.

    `members` is the group's size (1: attributed exactly); `names` lists the group's
    exchanges (`METHOD route #id`); `skipped` says why rows were not compared; `pairs`
    are the key pairs (table, primary key, shadow key) these rows taught, through which
    each member's reply ids are read (see shadow.rows.ids); `counts_rows` is True for one
    member only, so a group's row differences, which every member carries, are counted
    once in the row metrics."""

    primary: tuple[RowChange, ...] = ()
    shadow: tuple[RowChange, ...] = ()
    differences: tuple[Difference, ...] = ()
    normalised: int = 0
    members: int = 1
    names: tuple[str, ...] = ()
    skipped: str = ""
    pairs: tuple[Pair, ...] = ()
    counts_rows: bool = True


class Groups:
    """Union-find over exchanges; calls `on_final(group)` once a group is final, and
    `on_final(Group(finished, overflow=True))` for each batch of members of an overflowed
    one that finished; `on_stream(backend, seq, change, flows)` for each change of an
    overflowed group."""

    def __init__(self, *, max_members: int, on_final: Callable[[Group], None],
                 on_stream: Callable[[str, int, RowChange, tuple[int, ...]], None]
                 = lambda backend, seq, change, flows: None) -> None:
        self.max_members = max_members
        self.on_final = on_final
        self.on_stream = on_stream
        self._parent: dict[int, int] = {}
        self._groups: dict[int, Group] = {}
        self._members: dict[int, Member] = {}

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: Member) -> None:
        member.waiting = {member.primary} | ({member.shadow} if member.shadow else set())
        self._members[member.flow] = member
        self._parent[member.flow] = member.flow
        self._groups[member.flow] = Group([member], unfinished=1)

    def writing(self, writes: Callable[[Member], bool]) -> bool:
        """Whether an open member may write (`writes(member)`)."""
        return any(writes(member) for member in self._members.values())

    def concluded_through(self, flow: int) -> bool:
        """Whether every exchange up to `flow` has left its group (none is open)."""
        return all(open_flow > flow for open_flow in self._members)

    def member(self, flow: int) -> Member | None:
        return self._members.get(flow)

    def find(self, flow: int) -> int:
        root = flow
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[flow] != root:
            self._parent[flow], flow = root, self._parent[flow]
        return root

    def same(self, a: int, b: int) -> bool:
        return a in self._parent and b in self._parent and self.find(a) == self.find(b)

    def group(self, flow: int) -> Group | None:
        """`flow`'s group while it is open."""
        return self._groups[self.find(flow)] if flow in self._parent else None

    def inserting(self, table: str) -> bool:
        """Whether a group still open holds an insert into `table` (as folded)."""
        return any(change.op == "insert" and fold(change.table) == table
                   for group in self._groups.values()
                   for changes in group.changes.values() for _, change, _ in changes)

    def overflowed(self, flow: int) -> bool:
        """Whether `flow`'s group is past its bound (its changes are streamed)."""
        return flow in self._parent and self._groups[self.find(flow)].overflow

    def place(self, backend: str, seq: int, change: RowChange, flows: list[int]) -> None:
        """`change`, drained `seq`-th from `backend`, belongs to one of `flows`."""
        flows = [f for f in flows if f in self._parent]
        if not flows:
            return
        root = self.find(flows[0])
        for other in flows[1:]:
            root = self._union(root, self.find(other))
        group = self._groups[root]
        placed = (seq, change, tuple(flows))
        if group.overflow:
            self.on_stream(backend, *placed)
        else:
            group.changes.setdefault(backend, []).append(placed)

    def _union(self, a: int, b: int) -> int:
        if a == b:
            return a
        big, small = self._groups[a], self._groups[b]
        if len(big.members) < len(small.members):
            a, b, big, small = b, a, small, big
        self._parent[b] = a
        del self._groups[b]
        big.members += small.members
        big.unfinished += small.unfinished
        overflow = big.overflow or small.overflow or len(big.members) > self.max_members
        if overflow:
            for backend, changes in (*big.changes.items(), *small.changes.items()):
                for placed in sorted(changes, key=lambda item: item[0]):
                    self.on_stream(backend, *placed)
            big.changes = {}
            big.overflow = True
            self._release_finished(a, big)
        else:
            for backend, changes in small.changes.items():
                big.changes.setdefault(backend, []).extend(changes)
        return a

    def done(self, flow: int, backend: str) -> None:
        """`flow`'s window on `backend` is final (or will never open)."""
        member = self._members.get(flow)
        if member is None or backend not in member.waiting:
            return
        member.waiting.discard(backend)
        if member.waiting:
            return
        root = self.find(flow)
        group = self._groups[root]
        group.unfinished -= 1
        if group.overflow:
            self._release_finished(root, group)
        elif group.unfinished == 0:
            self._forget(root, group)
            self.on_final(group)

    def _release_finished(self, root: int, group: Group) -> None:
        finished = [m for m in group.members if not m.waiting]
        if not finished:
            return
        group.members = [m for m in group.members if m.waiting]
        for member in finished:
            self._members.pop(member.flow, None)
            group.released.append(member.flow)
        self.on_final(Group(finished, overflow=True))
        if not group.members:
            self._forget(root, group)

    def _forget(self, root: int, group: Group) -> None:
        self._groups.pop(root, None)
        for member in group.members:
            self._members.pop(member.flow, None)
        for flow in [m.flow for m in group.members] + group.released:
            self._parent.pop(flow, None)
