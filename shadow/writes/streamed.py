"""The changes of groups too large to compare as a whole, in one stream per pair of roles.

`shadow.writes.groups` hands every change of an overflowed group here with the exchanges
it may belong to; `shadow.rows.stream` pairs it with its twin as the drains deliver them;
when a member ends, what its end settled becomes its `GroupRows`: the leftovers diffed
and charged to it, the key pairs its changes made.
"""

from __future__ import annotations

from dataclasses import replace

from shadow.rows.live import RowState
from shadow.rows.stream import PRIMARY, SHADOW, Settled, Stream
from shadow.verdict import Difference, RowChange
from shadow.writes.groups import GroupRows, Groups, Member


class Streams:
    """One `Stream` per (primary, shadow) roles, and what they cannot take."""

    def __init__(self, rows: RowState, groups: Groups, limit: int) -> None:
        self.rows = rows
        self.groups = groups
        self.limit = limit
        self.streams: dict[tuple[str, str], Stream] = {}
        self.mode_changed = 0  # changes whose exchanges ran in two modes
        self.verified = 0  # changes paired with their twin and found the same

    def add(self, backend: str, seq: int, change: RowChange, flows: tuple[int, ...]) -> None:
        """A change of an overflowed group: into the stream of its members' roles."""
        members = [m for m in map(self.groups.member, flows) if m is not None]
        mirrored = [m for m in members if m.pair is not None and m.shadow is not None]
        if not mirrored:
            if members and backend == members[0].primary:
                self.rows.diverge(f"{members[0].route} wrote rows the shadow never received")
            return
        roles = (mirrored[0].primary, mirrored[0].shadow)
        if backend not in roles or any((m.primary, m.shadow) != roles for m in mirrored):
            self.mode_changed += 1  # no side to pair it on
            return
        stream = self.streams.get(roles)  # type: ignore[call-overload]
        if stream is None:
            stream = self.streams[roles] = Stream(self.rows.matcher(*roles),  # type: ignore
                                                  limit=self.limit)
        stream.add(PRIMARY if backend == roles[0] else SHADOW, seq, change,
                   [m.flow for m in members])

    def release(self, flow: int) -> Settled:
        """What `flow`'s end settled in every stream."""
        settled = Settled()
        for stream in self.streams.values():
            found = stream.release(flow)
            settled.pairs += found.pairs
            settled.primary += found.primary
            settled.shadow += found.shadow
            settled.verified += found.verified
        self.verified += settled.verified
        return settled

    def rows_of(self, member: Member, name: str) -> GroupRows:
        """`member`'s GroupRows from what its end settled: leftovers diffed, charged to it."""
        settled = self.release(member.flow)
        if member.pair is None or member.shadow is None:
            return GroupRows(members=0, names=(name,), pairs=tuple(settled.pairs))
        differences: tuple[Difference, ...] = ()
        normalised = 0
        pairs = list(settled.pairs)
        if settled.primary or settled.shadow:
            result = self.rows.diff(member.primary, tuple(settled.primary), member.shadow,
                                    tuple(settled.shadow))
            note = ("verified change by change among overlapping writes; charged to "
                    f"{name}, one of the writes that could have made it")
            differences = tuple(replace(d, detail=f"{d.detail}; {note}" if d.detail else note)
                                for d in result.differences)
            normalised, pairs = result.normalised, pairs + list(result.new_pairs)
        return GroupRows(tuple(settled.primary), tuple(settled.shadow), differences,
                         normalised, members=0, names=(name,), pairs=tuple(pairs))

    def inserting(self, table: str) -> bool:
        """Whether an insert into `table` (folded) still waits for its twin in a stream."""
        return any(stream.inserting(table) for stream in self.streams.values())

    def status(self) -> dict:
        """Changes verified one by one, waiting for their twins, dropped past the bound,
        and not streamed because their exchanges ran in two modes."""
        return {"changes_verified": self.verified,
                "changes_unpaired": sum(s.unpaired(side) for s in self.streams.values()
                                        for side in (PRIMARY, SHADOW)),
                "changes_dropped": sum(s.dropped for s in self.streams.values()),
                "changes_in_two_modes": self.mode_changed}
