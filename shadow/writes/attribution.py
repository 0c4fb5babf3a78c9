"""Row attribution in a running proxy: windows in, group verdicts out, no lock.

    proxy ── open/close windows ──► Side (per backend) ◄── drain task (per backend)
                                       │ place(changes)        one query per drain,
                                       ▼                        off the request path
                                    Groups ── final ──► diff once ──► each member's Pair

Each backend's change log is drained by its own task: soon after windows close, and on a
slow tick otherwise (outside writes). Changes are placed among the windows (see
`shadow.writes.windows`), joining exchanges into groups; a group whose windows are all
final on every backend is compared as a whole, once, and each member's Pair gets the
result (`GroupRows`). A Pair whose group is not final after `timeout` seconds gets a
clear skip reason instead. Changes no window can hold are outside writes. A group too
large to compare as a whole has its changes verified one by one as they are drained
(`shadow.rows.stream`), and each member gets, when it ends, what its end settled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from shadow.tasks import cancelled
from shadow.rows.live import RowState
from shadow.writes.causality import Ticket
from shadow.writes.groups import Group, GroupRows, Groups, Member
from shadow.writes.hold import Hold
from shadow.writes.outside import OutsideWrites
from shadow.writes.reconcile import Reconcile
from shadow.writes.streamed import Streams
from shadow.writes.sequence_reads import SequenceReads
from shadow.writes.windows import SQLITE_CLOCK, Learnt, Side, Window, measure_clock

log = logging.getLogger("shadow.writes")
RECONCILE_WAIT = 10.0
"""Seconds a verdict with one-sided rows waits at most for their twins in another group
(it waits no longer than the exchanges begun before it was held take to conclude)."""
KEY_DIFFERENCE_WAIT = 10.0
"""Seconds a verdict with a sequence-key difference waits for the sequences to be back in
step (groups that took their keys in another order on each side)."""
RESENT = "(sent again)"
"""The route of the windows of requests the proxy sends again on its own."""
KEY_WAIT = 1.0
"""Seconds a shadow request waits at most for the key pairs of the writes it follows."""


def _same_replies(pair) -> bool:
    primary, shadow = pair.primary, pair.shadow
    return (primary is not None and shadow is not None and primary.status == shadow.status
            and primary.body == shadow.body)


class Attribution:
    """Windows, drains, groups and outside writes of both backends."""

    def __init__(self, *, rows: RowState, hold: Hold | None, outside: OutsideWrites,
                 max_group: int, timeout: float, tick: float, stream_limit: int = 4096,
                 reconcile_wait: float = RECONCILE_WAIT,
                 raised: Callable[[str, BaseException], None],
                 primary: Callable[[], str],
                 on_counted: Callable[[str, int], None] | None = None,
                 on_concluded: Callable[[], None] | None = None,
                 on_expired: Callable[[str], None] | None = None) -> None:
        self.rows = rows
        self.hold = hold
        self.outside = outside
        self.timeout = timeout
        self.tick = tick
        self.raised = raised
        self.primary = primary
        self.on_counted = on_counted or (lambda how, n: None)
        self.on_concluded = on_concluded or (lambda: None)
        self.on_expired = on_expired or (lambda wait: None)
        self.keys_expired = 0
        self.pairs_early = 0  # key pairs learnt before their group was compared
        self.groups = Groups(max_members=max_group, on_final=self._final,
                             on_stream=lambda *change: self.streams.add(*change))
        self.streams = Streams(rows, self.groups, stream_limit)
        self.reconcile = Reconcile(wait=reconcile_wait, matcher=rows.matcher,
                                   clock=time.monotonic, anchor=rows.anchor,
                                   key_wait=KEY_DIFFERENCE_WAIT,
                                   busy=lambda table: self.groups.inserting(table)
                                   or self.streams.inserting(table), read=True,
                                   horizon=lambda: self.latest,
                                   concluded=self.groups.concluded_through)
        self.sequence_reads = SequenceReads(rows, self.reconcile,
                                            quiet=lambda: not self.groups.writing(self._may_write),
                                            epoch=lambda: self.write_joins)
        self.learnt = Learnt()
        self.sides: dict[str, Side] = {b: Side(b, learnt=self.learnt) for b in rows.captures}
        self._wake = {b: asyncio.Event() for b in rows.captures}
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self.write_joins = 0  # exchanges that may write that ever joined
        self.latest = 0  # the latest exchange that joined
        self.resent_rows = 0  # rows written by requests the proxy sent again on its own
        self._resent = itertools.count(-1, -1)  # their windows' numbers: never an exchange
        self._since: dict[int, float] = {}
        self._unconcluded: dict[int, int] = {}
        self._asked: dict[int, float] = {}  # flow -> when it began waiting for a drain
        self.writes_waiting: set[int] = set()
        self.exact = 0
        self.grouped = 0
        self._expired_at = time.monotonic()

    async def start(self) -> None:
        """Measure the clocks, report what is already in the logs, start draining."""
        for backend, capture in self.rows.captures.items():
            now = getattr(capture, "now", None)
            clock = getattr(capture, "change_clock", None) or SQLITE_CLOCK
            if now is not None and await now() is not None:
                clock = await measure_clock(now)
            self.sides[backend].clock = clock
            self.sides[backend].positions = getattr(capture, "positions", None)
            found = await self.rows.drain(backend)
            self.outside.add(backend, list(found), when="at start-up")
        loop = asyncio.get_running_loop()
        for backend in self.sides:
            self._tasks.append(loop.create_task(self._drain_forever(backend),
                                                name=f"shadow-drain-{backend}"))

    async def stop(self) -> None:
        await cancelled(*self._tasks)
        self._tasks.clear()
        self.reconcile.flush()

    # --- the proxy's side ----------------------------------------------------------------

    def join(self, member: Member) -> None:
        if self._may_write(member):
            self.write_joins += 1
        self.latest = max(self.latest, member.flow)
        self.groups.add(member)
        self._since[member.flow] = time.monotonic()
        if member.writes and member.pair is not None:
            self.writes_waiting.add(member.flow)

    def _may_write(self, member: Member) -> bool:
        return self.may_write(member.route, member.writes)

    def may_write(self, route: str, writes: bool) -> bool:
        """A write (`writes`: its policy says it may), or a read of a route seen writing rows."""
        return writes or route in self.learnt.routes

    def open(self, flow: int, backend: str, route: str, writes: bool) -> Window:
        return self.sides[backend].open(flow, route, writes, time.time())

    def resent(self, backend: str) -> Window:
        """A window for a request the proxy sends again on its own (an A/A probe, a
        recheck): a row it writes anyway (a read that hit an error path and audited it)
        is its own, counted in `resent_rows`, neither compared nor an outside write; a
        new row's key moves its table's sequence on that side (`RowState.passed`)."""
        return self.open(next(self._resent), backend, RESENT, False)

    def close(self, window: Window, backend: str) -> None:
        if window.end is None:
            self.sides[backend].close(window, time.time())
            self._wake[backend].set()

    def writes(self, route: str, writes: bool) -> bool:
        """Whether an exchange of `route` is ordered as a write on the shadow: its policy
        says it may write, or reads of its route usually write rows (`Learnt.usually`)."""
        return writes or self.learnt.usually(route)

    def never_sent(self, flow: int, backend: str) -> None:
        """`flow` will never reach `backend` (dropped shadow work)."""
        self.groups.done(flow, backend)

    def completed(self, ticket: Ticket) -> None:
        """A mirrored write completed on the primary: later shadow requests wait for its
        rows to be compared (see `keys_ready`)."""
        member = self.groups.member(ticket.flow)
        if ticket.writes and ticket.index is not None and member is not None \
                and member.pair is not None:
            self._unconcluded[ticket.index] = ticket.flow

    def keys_ready(self, ticket: Ticket) -> bool:
        """Whether a shadow request may go as far as key pairs are concerned.

        It waits for the writes it follows to have their rows compared, unless it is
        grouped with them in a group compared as a whole (that group cannot be compared
        before the request has run), or their two replies were equal while no key has ever
        shifted (then no pair it could need differs), or `KEY_WAIT` seconds have passed
        since the primary's send. Even then, the shadow's own rows of those writes must
        have been drained (one drain, at most `KEY_WAIT`): a change of a group compared
        change by change is paired as soon as both twins are, and the inserts of a group
        not yet compared are paired early by content where each has exactly one twin
        (`_pair_early`). Else a shadow seconds behind, or a write still open beside them,
        would send a request naming a row its previous request has just made before that
        row's pair is known. A request let go at either bound while it would still wait
        is counted (`keys_expired`)."""
        now = time.monotonic()
        shifted = self.rows.ids.active
        waited = now - ticket.sent_at > KEY_WAIT
        let_go = False
        for index, flow in self._unconcluded.items():
            if index > ticket.after_writes:
                continue
            member = self.groups.member(flow)
            pair = member.pair if member is not None else None
            if member is None or pair is None or (not shifted and _same_replies(pair)):
                continue
            streamed = self.groups.overflowed(flow)
            together = self.groups.same(flow, ticket.flow) and not streamed
            if not (waited or streamed or together):
                return False
            let_go = let_go or not (streamed or together)
            if member.shadow in member.waiting:
                since = self._asked.setdefault(ticket.flow, now)
                if now - since <= KEY_WAIT:
                    return False
                let_go = True
            if not streamed:
                self._pair_early(member)
        self._asked.pop(ticket.flow, None)
        if let_go:
            self.keys_expired += 1
            self.on_expired("keys")
        return True

    def _pair_early(self, member: Member) -> None:
        """Learn the key pairs `member`'s group's rows drained so far already tell
        (`ChangeMatcher.twins`): the group is compared only once all its writes ended, and
        a request that follows one of them may name a row whose twin has another id."""
        group = self.groups.group(member.flow)
        if group is None or member.shadow is None:
            return
        sizes = tuple(len(group.changes.get(b, ())) for b in (member.primary, member.shadow))
        if sizes == group.paired_at or 0 in sizes:
            return
        group.paired_at = sizes
        matcher = self.rows.matcher(member.primary, member.shadow)
        twins = matcher.twins(group.rows(member.primary), group.rows(member.shadow))
        self.pairs_early += self.rows.learn_early(member.primary, twins)

    # --- draining ------------------------------------------------------------------------

    async def _drain_forever(self, backend: str) -> None:
        wake = self._wake[backend]
        while True:
            try:
                async with asyncio.timeout(self.tick):
                    await wake.wait()
            except TimeoutError:
                pass
            wake.clear()
            if time.monotonic() - self._expired_at >= self.tick:
                self._expire()
            try:
                await self.drain(backend)
                if backend == self.primary():
                    await self.sequence_reads.read()
            except Exception as exc:  # the verifier's own failure: logged, counted
                self.raised(f"drain_{backend}", exc)

    async def drain(self, backend: str) -> None:
        """One drain of `backend`'s log: place its changes, settle windows, conclude."""
        side = self.sides[backend]
        began, d0 = time.monotonic(), time.time()
        changes = list(await self.rows.drain(backend))
        d1 = time.time()
        outside = []
        for placed in side.place(changes, d0, d1):
            self._seq += 1
            if placed.windows and all(w.flow < 0 for w in placed.windows):
                self.resent_rows += 1  # written by a request the proxy sent again
                self.rows.passed(backend, placed.change)
            elif placed.windows:
                self.groups.place(backend, self._seq, placed.change,
                                  [w.flow for w in placed.windows if w.flow >= 0])
            else:
                outside.append(placed.change)
        self.outside.add(backend, outside, when="while running")
        for window in side.settle(d0):
            self.groups.done(window.flow, backend)
        if self.hold is not None and backend == self.primary():
            self.hold.drained(began)
        if side.closed_since_drain:
            self._wake[backend].set()
        self.on_concluded()

    # --- verdicts ------------------------------------------------------------------------

    def _final(self, group: Group) -> None:
        try:
            self._conclude(group)
        except Exception as exc:
            self.raised("attribute", exc)
            for member in group.members:
                self._hand(member, GroupRows(skipped="rows_failed"))

    def _conclude(self, group: Group) -> None:
        members = group.members
        names = tuple(f"{m.method} {m.route} #{m.flow}" for m in members)
        if group.overflow:
            self._count(members, grouped=True)
            for member, name in zip(members, names, strict=True):
                self._offer([(member, self.streams.rows_of(member, name))])
            return
        mirrored = [m for m in members if m.pair is not None]
        roles = {(m.primary, m.shadow) for m in mirrored}
        primary = members[0].primary
        if not mirrored:
            if group.rows(primary):
                self.rows.diverge(f"{members[0].route} wrote rows the shadow never received")
            self._count(members)
            return
        if len(roles) > 1:
            for member in mirrored:
                self._hand(member, GroupRows(members=len(members), names=names,
                                             skipped="mode_changed"))
            return
        ((primary, shadow),) = roles
        p_rows, s_rows = group.rows(primary), group.rows(shadow)
        result = self.rows.diff(primary, p_rows, shadow, s_rows)
        differences = result.differences
        if len(members) > 1:
            self.rows.crossed(primary, p_rows, s_rows, result.new_pairs)
            note = f"group of {len(members)}: {', '.join(names)}"
            differences = tuple(replace(d, detail=f"{d.detail}; {note}" if d.detail else note)
                                for d in differences)
        rows = GroupRows(p_rows, s_rows, differences, result.normalised, len(members), names,
                         pairs=tuple(result.new_pairs))
        self._count(members)
        self._offer([(member, rows if index == 0 else replace(rows, counts_rows=False))
                     for index, member in enumerate(mirrored)])

    def _count(self, members: list[Member], grouped: bool = False) -> None:
        """Count the writes among `members`: exact when alone, else grouped (`grouped`:
        a batch of an overflowed group, whatever its size)."""
        writes = sum(1 for m in members if m.writes)
        if not writes:
            return
        exact = len(members) == 1 and not grouped
        if exact:
            self.exact += writes
        else:
            self.grouped += writes
        self.on_counted("exact" if exact else "group", writes)

    def _offer(self, handed: list[tuple[Member, GroupRows]]) -> None:
        """Hand verdicts with rows through the reconciliation of one-sided rows."""
        for member, _ in handed:
            self._done_with(member)
        mirrored = [(m.pair, rows) for m, rows in handed if m.pair is not None]
        if mirrored:
            first = handed[0][0]
            self.reconcile.offer((first.primary, first.shadow or ""), mirrored)

    def _hand(self, member: Member, rows: GroupRows) -> None:
        self._done_with(member)
        if member.pair is not None:
            member.pair.set_rows(rows)

    def _done_with(self, member: Member) -> None:
        self._since.pop(member.flow, None)
        self.writes_waiting.discard(member.flow)
        for index, flow in list(self._unconcluded.items()):
            if flow == member.flow:
                del self._unconcluded[index]

    def _expire(self) -> None:
        """Pairs whose group is not final after `timeout`: concluded without rows."""
        self._expired_at = time.monotonic()
        self.reconcile.due()
        limit = self._expired_at - self.timeout
        for flow, since in list(self._asked.items()):
            if since < limit:  # dropped while it waited
                del self._asked[flow]
        for flow, since in list(self._since.items()):
            if since < limit:
                member = self.groups.member(flow)
                self.streams.release(flow)
                if member is not None:
                    self._hand(member, GroupRows(skipped="rows_not_attributed_in_time"))
                else:
                    self._since.pop(flow, None)
        self.on_concluded()

    @property
    def exact_share(self) -> float | None:
        total = self.exact + self.grouped
        return None if total == 0 else self.exact / total

    def status(self) -> dict:
        return {"writes_exact": self.exact, "writes_grouped": self.grouped,
                "waits_expired": self.keys_expired, "pairs_learnt_early": self.pairs_early,
                "exact_share": self.exact_share, "groups_open": len(self.groups),
                **self.streams.status(), "rows_reconciled": self.reconcile.reconciled,
                "keys_reordered": self.reconcile.reordered, "resent_rows": self.resent_rows,
                "outside": self.outside.status()}
