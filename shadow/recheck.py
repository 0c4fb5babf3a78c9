"""Rechecking a read that raced writes: which mismatches qualify, how a recheck ends, and
the bounded place they wait in; pure, no I/O (shadow.rechecker runs them).

A safe read that ran on the primary while other clients' writes were in flight there saw
some of those writes. The shadow replays it under causality, after the writes that had
*completed* on the primary before it arrived, so it may see another subset of the writes
that overlapped it: its reply then differs from the primary's with no fault of the
candidate, a race the shadow cannot replay. Such a mismatch is not recorded at once. Once
no write is in flight on either side, the same read is sent again to the primary and then
to the shadow, and the two fresh replies are compared with the original pair's rules:

    fresh replies agree, no write ran on either side meanwhile  RACE       recorded as a match
                                                                           (reason `race`)
    fresh replies differ, no write ran meanwhile                CONFIRMED  recorded as it was
    a write ran during the recheck (MOVED), no usable reply     UNSETTLED  recorded as it was
    (FAILED), no write-free moment within the wait (BUSY), too
    many waiting (FULL), the proxy stopped (STOPPED), the mode
    changed the builds' roles meanwhile (MODE)

So a difference is never hidden silently: only a recheck that reproduced the read in a
quiet moment on both sides, and found both builds agreeing, turns it into a match. A
recheck that moved (a write ran while it was sent again) waits for the next quiet moment.

A mismatch the proxy cannot settle is no evidence that the candidate is wrong: the shadow
cannot replay which of the overlapping writes the primary's read saw. It is recorded as
`raced` (unverified: raced writes), neither match nor mismatch, when `raced_why` says so:
a read that overlapped a write, of a safe method, whose differences are all in the
replies (its own rows, an audit row, compared as usual: any row difference keeps it a
mismatch), with no status difference where a side answered 5xx (no race makes a build
fail) and no value of another JSON type on each side, neither null (no race makes a count a
string), none of whose signatures was already recorded as a mismatch (the same difference
without a race to explain it), and that may not be sent again (it wrote rows, or its
route has, or it was never seen reading without writing, or its policy forbids a second
send) or whose recheck ended unsettled.

A comparison qualifies (`refusal` returns None) when it is a mismatch of a safe method
whose differences are all in the replies (no row difference), that wrote no row on either
side, whose route A/A probing may send again (never `skip`, `writes = true` or
`calibrate = false`), has not been seen writing rows and has been seen reading without
writing (`Proof`: an audited read whose row an overlapping write was charged with looks
like a read that writes nothing, and sending it again would write a second audit row on
both builds), and that overlapped a write (`shadow.overlap.Watch`): one ran on the primary
between the read's arrival and its reply, or on the shadow between its copy's send and its
reply, or overtook its copy on the shadow.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from shadow.compare.walk import TYPE_CHANGED
from shadow.route_learning import OTHER
from shadow.verdict import ROW_KINDS, Comparison, Difference, Kind, Reply, Verdict

RACE, CONFIRMED, UNSETTLED = "race", "confirmed", "unsettled"
"""How a recheck ended (the `outcome` label of `shadow_reads_rechecked_total`)."""
MOVED, FAILED, BUSY, FULL, STOPPED, MODE = "moved", "failed", "busy", "full", "stopped", "mode"
"""Why a recheck was unsettled (the `why` label of `shadow_recheck_unsettled_total`)."""
OUTCOMES = (RACE, CONFIRMED, UNSETTLED)
SAFE = frozenset({"GET", "HEAD"})
"""The methods a recheck may send again."""
UNSETTLED_WHY = (MOVED, FAILED, BUSY, FULL, STOPPED, MODE)
RESEND_WRITES, POLICY = "resend_writes", "policy"
"""Why a read may not be sent again: it (or its route) writes rows, or its route was never
seen reading without writing; its route's policy."""
RACED_WHY = (RESEND_WRITES, POLICY, UNSETTLED)
"""Why a read was recorded `raced` (the `why` label of `shadow_reads_raced_total`)."""
_NOT_RESENT = {"wrote_rows": RESEND_WRITES, "route_writes": RESEND_WRITES,
               "unproven": RESEND_WRITES, "policy": POLICY}


class Proof:
    """Which routes are known to write nothing when read: a read that overlapped no write
    on either side owns every row its sides wrote meanwhile, so when it wrote none, its
    route was seen reading without writing. A read that overlapped writes may have had
    its own rows charged to them (a route not yet seen writing is no candidate for a
    change a write's window also holds), so its empty rows prove nothing: an audited read
    beside a write looks like a read that writes nothing. A route is proven after
    `needed` such reads, and no read of it is sent again on the proxy's own before.
    Paths no template names yet (or past the templates' cap) share the route `{other}`:
    quiet reads of some of them say nothing of the others, so `{other}` is never proven.
    At most `most` routes are remembered (the oldest forgotten first)."""

    def __init__(self, *, needed: int = 3, most: int = 10_000) -> None:
        self.needed = needed
        self.most = most
        self._seen: dict[str, int] = {}

    def saw(self, c: Comparison) -> None:
        """Count `c` when it was served with nothing beside it and wrote no row."""
        ex, shadow = c.exchange, c.shadow
        if (c.overlapped or c.primary.rows or shadow is None or shadow.rows
                or not c.primary.reply.ok or not shadow.reply.ok or ex.route == OTHER):
            return
        key = f"{ex.method} {ex.route}"
        seen = self._seen.pop(key, 0)
        self._seen[key] = min(seen + 1, self.needed)
        while len(self._seen) > self.most:
            del self._seen[next(iter(self._seen))]

    def proven(self, method: str, route: str) -> bool:
        return self._seen.get(f"{method} {route}", 0) >= self.needed


def refusal(c: Comparison, *, methods: frozenset[str], may_resend: bool, writing: bool,
            overlapped: int, proven: bool = True) -> str | None:
    """Why `c` is not rechecked, in one word, or None when it is. `may_resend`: its route
    may be sent again by the A/A policy; `writing`: its route was seen writing rows on
    either backend; `overlapped`: how many writes ran beside it (`Watch.writes`);
    `proven`: its route was seen reading without writing (`Proof`)."""
    if c.verdict is not Verdict.MISMATCH:
        return "verdict"
    if c.exchange.method not in methods:
        return "method"
    if any(d.kind in ROW_KINDS for d in c.differences):
        return "rows_differ"
    if c.primary.rows or (c.shadow is not None and c.shadow.rows):
        return "wrote_rows"
    if not may_resend:
        return "policy"
    if writing:
        return "route_writes"
    if overlapped <= 0:
        return "no_overlap"
    if not proven:
        return "unproven"
    return None


def raced_why(c: Comparison, *, refused: str | None, unsettled: bool, overlapped: int,
              methods: frozenset[str], mismatched: Container[str]) -> str | None:
    """Why the mismatch `c` is recorded `raced`, one of RACED_WHY, or None when it stays a
    mismatch. `refused`: why it was not rechecked (`refusal`); `unsettled`: its recheck
    ended unsettled; `overlapped`: writes that ran beside it; `mismatched`: signatures
    already recorded as mismatches."""
    why = UNSETTLED if unsettled else _NOT_RESENT.get(refused or "")
    if (why is None or c.verdict is not Verdict.MISMATCH or c.exchange.method not in methods
            or overlapped <= 0):
        return None
    for d in c.differences:
        if d.kind in ROW_KINDS or (d.kind == Kind.STATUS and _failed(d)) or _retyped(d):
            return None
    if any(s in mismatched for s in c.signatures):
        return None
    return why


def raced_said(status: dict[str, Any]) -> str:
    """The reads recorded raced, in words, from a rechecker's `status()`."""
    why = status.get("raced_why", {})
    return (f"{status['raced']} read(s) unverified: their replies differed while "
            f"{status.get('raced_writes', 0)} write(s) overlapped them and the proxy could not "
            f"settle them ({why.get(RESEND_WRITES, 0)} may write rows if sent again, "
            f"{why.get(POLICY, 0)} may not be sent again by policy, {why.get(UNSETTLED, 0)} "
            "unsettled rechecks); not evidence either way")


def _failed(d: Difference) -> bool:
    return any(isinstance(v, int) and v >= 500 for v in (d.primary, d.shadow))


def _retyped(d: Difference) -> bool:
    """A value of another JSON type on each side, neither null: no write makes a count a
    string (a race may make an average null)."""
    if d.kind != Kind.BODY or not d.detail.startswith(TYPE_CHANGED):
        return False
    return "null" not in d.detail[len(TYPE_CHANGED):].split(" -> ")


def outcome(primary: Reply | None, shadow: Reply | None, differences: tuple[Difference, ...],
            writes_during: int) -> tuple[str, str]:
    """(outcome, why) of one recheck: the fresh replies (None: not got), their
    differences under the original pair's rules, and how many writes ran on either side
    while it ran. `why` is '' unless the outcome is UNSETTLED."""
    if primary is None or shadow is None or not primary.ok or not shadow.ok:
        return UNSETTLED, FAILED
    if writes_during:
        return UNSETTLED, MOVED
    return (CONFIRMED, "") if differences else (RACE, "")


class Budget:
    """At most `per_second` rechecks a second (a token bucket holding one second's worth)."""

    def __init__(self, per_second: float, clock: Callable[[], float]) -> None:
        self.per_second = per_second
        self.clock = clock
        self.tokens = max(per_second, 1.0)
        self._at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.tokens + (now - self._at) * self.per_second,
                          max(self.per_second, 1.0))
        self._at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True, eq=False)
class Waiter:
    """One held comparison: the caller's `item`, when its wait ends, whether its recheck
    runs now, and whether it was settled (each comes out exactly once)."""

    item: Any
    deadline: float
    running: bool = False
    settled: bool = False
    seq: int = field(default=0)


class Waiting:
    """At most `most` held comparisons, each waiting at most `wait` seconds of `clock`
    for a quiet moment; a running recheck still counts toward `most`."""

    def __init__(self, *, most: int, wait: float, clock: Callable[[], float]) -> None:
        self.most = most
        self.wait = wait
        self.clock = clock
        self._held: dict[int, Waiter] = {}  # in the order held, so deadlines ascend
        self._seq = 0

    def __len__(self) -> int:
        return len(self._held)

    @property
    def running(self) -> int:
        return sum(1 for w in self._held.values() if w.running)

    def add(self, item: Any) -> Waiter | None:
        """Hold `item`; None when `most` are held already."""
        if len(self._held) >= self.most:
            return None
        self._seq += 1
        waiter = self._held[self._seq] = Waiter(item, self.clock() + self.wait, seq=self._seq)
        return waiter

    def due(self) -> list[Waiter]:
        """The waiters not running whose wait is over, taken out."""
        now = self.clock()
        out = [w for w in self._held.values() if not w.running and w.deadline <= now]
        return [self._take(w) for w in out]

    def ready(self, n: int) -> list[Waiter]:
        """Up to `n` waiters (the oldest first) whose recheck is to start now, marked running."""
        out = []
        for waiter in self._held.values():
            if len(out) >= n:
                break
            if not waiter.running:
                waiter.running = True
                out.append(waiter)
        return out

    def back(self, waiter: Waiter) -> None:
        """A recheck that could not start (a write began first) waits again."""
        waiter.running = False

    def done(self, waiter: Waiter) -> bool:
        """Take `waiter` out; False when it was settled already (by `flush`)."""
        if waiter.settled:
            return False
        self._take(waiter)
        return True

    def flush(self) -> list[Waiter]:
        """Every waiter, running or not, taken out (the proxy stops)."""
        return [self._take(w) for w in list(self._held.values())]

    def _take(self, waiter: Waiter) -> Waiter:
        self._held.pop(waiter.seq, None)
        waiter.settled = True
        return waiter


def evidence(outcome_: str, why: str, overlapped: int,
             differences: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """What a sample keeps of a recheck: how it ended, why, how many writes the read
    overlapped, and the fresh pair's differences as the sample shows them."""
    kept: dict[str, Any] = {"outcome": outcome_, "writes_overlapped": overlapped}
    if why:
        kept["why"] = why
    shown = list(differences)
    if shown:
        kept["differences"] = shown
    return kept
