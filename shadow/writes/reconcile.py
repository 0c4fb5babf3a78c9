"""One-sided rows whose twin another group holds, reconciled before they are reported.

Attribution places each change among the windows that may hold it, separately on each
backend. When the two placements disagree (a read that writes an audit row only on its
error path overlapped a write on one side and nothing on the other, say), the row lands
in one group on the primary and in another on the shadow: each group alone shows it as
`row_missing` or `row_extra`, though both databases wrote it. So a verdict whose rows
differ only by such one-sided rows is held for `wait` seconds; a one-sided row of one
held verdict that has a twin among the opposite one-sided rows of another (compared as
the stream compares them: content for inserts, the row for updates and deletes) is no
difference in either, and its key pair is learnt. A verdict left with no one-sided row
is delivered at once; the others when their wait is over, or as soon as no twin can
come any more: when `concluded` says every exchange that had begun when the verdict was
held (up to the `horizon` then) has been concluded, each of them was offered here and
paired with it if it could be. Under load a shadow seconds behind concludes the group
holding a twin seconds later, so the wait is long; on a quiet proxy it ends at once. Only
the verdict waits: the writes' own bookkeeping (key waits, mode changes) does not.

A one-sided row also moved its table's sequence anchor (see `shadow.rows.sequences`), so
the key differences ("key: the shadow was expected to use ...") of that table in the
verdicts concluded around it are suspect: a verdict with key differences is held too,
and once a one-sided row of that table is reconciled, the key differences of that table
held at that moment are dropped as well. A burnt sequence value with no such row nearby
is still reported, once the wait is over.

Two groups that inserted into one table while both were open may take their keys in one
order on the primary and in the other on the shadow, and conclude in either order: each
then breaks the sequence as the other left it, though together they took the same keys.
A burnt value moves every later key of one side by one for good; such a reordering only
for a moment. So a held key difference remembers the offset between the two sequences
it expected (the shadow's key less the primary's); once the table's anchor (the highest
key each side has reached, see `shadow.rows.sequences.follow`) stands at that offset
again, the sequences are back in step, and that key difference and those of the table
held after it, judged against the passing offset, are dropped (`reordered`). Groups
under load conclude seconds apart, so a verdict with a key difference waits while a
group still open has inserted into its table (or an insert into it waits for its twin in
a group verified change by change), at most `key_wait` seconds (more than `wait`),
before it is reported.

Neither side's log shows a burnt value: `INSERT ... ON CONFLICT DO NOTHING` (or SQLite's
`INSERT OR IGNORE` on an AUTOINCREMENT table) takes one from the sequence and writes no
row. Two writes that do so at once interleave their burnt values in one order on the
primary and in another on the shadow, and a key they then insert breaks the sequence as
the rows show it, though both sequences have taken the same values. So when `read` is
given, a key difference with nothing else left to wait for is not reported on the rows'
word alone: its table is `asking()` for the two sequences' positions, and `sequences`
hands them in, read while no write ran on either side. Where they stand again at the
offset a held key difference expected, the sequences are in step and that difference
(and those of the table held after it) is dropped, as above; the others are confirmed
and reported. A table whose positions cannot be read is reported as it stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from shadow.rows.match import ChangeMatcher
from shadow.rows.model import fold
from shadow.rows.netchange import key_text
from shadow.rows.sequences import KEY_DETAIL, expected_key
from shadow.verdict import Difference, Kind, RowChange

ONE_SIDED = (Kind.ROW_MISSING, Kind.ROW_EXTRA)


@dataclass(slots=True, eq=False)
class Held:
    """Verdicts sharing one set of row differences, waiting for twins of their
    one-sided rows: (difference, change, primary side?) each."""

    deliveries: list[tuple[Any, Any]]  # (Pair, GroupRows)
    roles: tuple[str, str]
    sided: list[tuple[Difference, RowChange, bool]]
    deadline: float
    keys: list[tuple[Difference, str]] = field(default_factory=list)  # (key diff, table)
    gone: set[int] = field(default_factory=set)  # ids of differences reconciled
    checked: set[int] = field(default_factory=set)  # ids of key differences confirmed
    horizon: int = 0  # the latest exchange begun when it was held


def key_differences(rows: Any) -> list[tuple[Difference, str]]:
    """The sequence-key differences of `rows` (a GroupRows), each with its table."""
    return [(d, fold(d.path.split("[", 1)[0])) for d in rows.differences
            if d.kind == Kind.ROW_CHANGED and d.detail.startswith(KEY_DETAIL)]


def one_sided(rows: Any) -> list[tuple[Difference, RowChange, bool]]:
    """The one-sided row differences of `rows` (a GroupRows) with the change each names."""
    found = []
    for diff in rows.differences:
        if diff.kind not in ONE_SIDED:
            continue
        primary = diff.kind == Kind.ROW_MISSING
        for change in rows.primary if primary else rows.shadow:
            if f"{change.table}[{key_text(tuple(change.key))}]" == diff.path:
                found.append((diff, change, primary))
                break
    return found


class Reconcile:
    """Held verdicts, delivered when reconciled or when their wait is over."""

    def __init__(self, *, wait: float, matcher: Callable[[str, str], ChangeMatcher],
                 clock: Callable[[], float], key_wait: float | None = None,
                 anchor: Callable[[tuple[str, str], str], tuple[int, int] | None]
                 = lambda roles, table: None,
                 busy: Callable[[str], bool] = lambda table: False,
                 read: bool = False, horizon: Callable[[], int] | None = None,
                 concluded: Callable[[int], bool] | None = None) -> None:
        self.wait = wait
        self.key_wait = wait if key_wait is None else max(wait, key_wait)
        self.anchor = anchor  # a table's sequences as they stand: (primary, shadow)
        self.busy = busy  # whether an open group or a stream holds an insert into a table
        self.read = read  # whether the sequences' positions are read (`asking`, `sequences`)
        self.horizon = horizon  # the latest exchange begun
        self.concluded = concluded  # whether every exchange up to one has been concluded
        self.matcher = matcher
        self.clock = clock
        self.held: list[Held] = []
        self.reconciled = 0
        self.reordered = 0  # key differences of groups that took their keys in another order

    def offer(self, roles: tuple[str, str], deliveries: list[tuple[Any, Any]]) -> None:
        """Deliver `deliveries` (Pair, GroupRows) now, or hold them when their rows have
        one-sided differences, after pairing those with held ones."""
        rows = deliveries[0][1]
        sided, keys = one_sided(rows), key_differences(rows)
        if self.wait <= 0:
            _deliver(deliveries)
            return
        if not (sided or keys):
            _deliver(deliveries)
            self._back_in_step()
            return
        new = Held(deliveries, roles, sided,
                   self.clock() + (self.key_wait if keys else self.wait), keys,
                   horizon=self.horizon() if self.horizon is not None else 0)
        matcher = self.matcher(*roles)
        for held in list(self.held):
            if held.roles == roles:
                self._pair(matcher, new, held)
        self.held.append(new)
        self._back_in_step()
        self._deliver_ready()

    def asking(self) -> set[tuple[tuple[str, str], str]]:
        """(roles, table) of each table whose sequences' positions would settle a held key
        difference: one that waits for nothing else (see the module docstring)."""
        return {(held.roles, table) for held in self.held for diff, table in held.keys
                if self._open_key(held, diff) and self._sided_over(held)
                and not self.busy(table)}

    def sequences(self, roles: tuple[str, str], table: str,
                  positions: tuple[int, int] | None) -> None:
        """The positions (primary, shadow) of `table`'s sequences, read while no write
        ran, or None when they cannot be read: drop the held key differences they show
        back in step, confirm the others."""
        left = self._in_step(roles, table, None if positions is None
                             else positions[1] - positions[0])
        for held, diff, _ in left:
            held.checked.add(id(diff))
        self._deliver_ready()

    def due(self) -> None:
        """Deliver the verdicts whose wait is over, with what is left of their rows."""
        now = self.clock()
        self._back_in_step()
        for held in [h for h in self.held
                     if h.deadline <= now or _settled(h) or self._quiet(h)]:
            self.held.remove(held)
            _deliver_reduced(held)

    def flush(self) -> None:
        for held in self.held:
            _deliver_reduced(held)
        self.held.clear()

    def _pair(self, matcher: ChangeMatcher, a: Held, b: Held) -> bool:
        """Reconcile twins between `a` and `b`; True when any was found."""
        found = False
        for diff, change, primary in a.sided:
            if id(diff) in a.gone:
                continue
            for other_diff, other, other_primary in b.sided:
                if id(other_diff) in b.gone or other_primary == primary:
                    continue
                p, s = (change, other) if primary else (other, change)
                if not _twins(matcher, p, s):
                    continue
                matcher.paired(p, s)
                a.gone.add(id(diff))
                b.gone.add(id(other_diff))
                self.reconciled += 1
                self._clear_keys(fold(p.table), a)
                found = True
                break
        return found

    def _back_in_step(self) -> None:
        """Drop the key differences of each table whose sequences stand again at the
        offset one of them expected, from that one on (see the module docstring)."""
        tables = {(held.roles, table) for held in self.held for diff, table in held.keys
                  if id(diff) not in held.gone}
        for roles, table in tables:
            anchor = self.anchor(roles, table)
            if anchor is not None:
                self._in_step(roles, table, anchor[1] - anchor[0])

    def _in_step(self, roles: tuple[str, str], table: str, offset: int | None
                 ) -> list[tuple[Held, Difference, int | None]]:
        """Drop `table`'s held key differences from the first that expected the
        sequences at `offset` (where they stand now; None: unknown) on; returns the
        ones before it, still held."""
        chain = self._chain(roles, table)
        step = next((i for i, (_, _, o) in enumerate(chain)
                     if offset is not None and o == offset), len(chain))
        for held, diff, _ in chain[step:]:
            held.gone.add(id(diff))
            self.reordered += 1
        return chain[:step]

    def _chain(self, roles: tuple[str, str], table: str
               ) -> list[tuple[Held, Difference, int | None]]:
        """The key differences of `table` still held, oldest first, each with the offset
        between the two sequences it expected (None when its detail does not say)."""
        chain = []
        for held in self.held:
            if held.roles != roles:
                continue
            for diff, of in held.keys:
                if of != table or id(diff) in held.gone:
                    continue
                expected = expected_key(diff.detail)
                offset = expected - diff.primary if expected is not None \
                    and isinstance(diff.primary, int) else None
                chain.append((held, diff, offset))
        return chain

    def _quiet(self, held: Held) -> bool:
        """Whether `held` waits for nothing any more: its one-sided rows are over (see
        `_sided_over`), and its key differences are of tables no open group inserts into
        (no other group could bring the sequences back in step), each confirmed by its
        sequences' positions when those are read."""
        return self._sided_over(held) and not any(
            self.busy(table) or (self.read and id(diff) not in held.checked)
            for diff, table in held.keys if id(diff) not in held.gone)

    def _sided_over(self, held: Held) -> bool:
        """Every one-sided row of `held` reconciled, or no twin can come any more."""
        return (all(id(diff) in held.gone for diff, _, _ in held.sided)
                or (self.concluded is not None and self.concluded(held.horizon)))

    @staticmethod
    def _open_key(held: Held, diff: Difference) -> bool:
        return id(diff) not in held.gone and id(diff) not in held.checked

    def _deliver_ready(self) -> None:
        for held in [h for h in self.held if _settled(h) or self._quiet(h)]:
            self.held.remove(held)
            _deliver_reduced(held)

    def _clear_keys(self, table: str, new: Held) -> None:
        """Key differences of `table` held now are artefacts of a one-sided row."""
        for held in (*self.held, new):
            for diff, of in held.keys:
                if of == table:
                    held.gone.add(id(diff))


def _twins(matcher: ChangeMatcher, p: RowChange, s: RowChange) -> bool:
    if fold(p.table) != fold(s.table) or (p.op != s.op and "delete" in (p.op, s.op)):
        return False
    bucket = matcher.bucket(p, True)
    return bucket is not None and bucket == matcher.bucket(s, False) and matcher.same(p, s)


def _settled(held: Held) -> bool:
    """Nothing left to wait for: every one-sided row reconciled, and no key difference
    kept (a key difference alone waits for its wait to end)."""
    return (all(id(diff) in held.gone for diff, _, _ in held.sided)
            and all(id(diff) in held.gone for diff, _ in held.keys))


def _deliver_reduced(held: Held) -> None:
    if not held.gone:
        _deliver(held.deliveries)
        return
    out = []
    for pair, rows in held.deliveries:
        kept = tuple(d for d in rows.differences if id(d) not in held.gone)
        out.append((pair, replace(rows, differences=kept,
                                  normalised=rows.normalised + len(held.gone))))
    _deliver(out)


def _deliver(deliveries: list[tuple[Any, Any]]) -> None:
    for pair, rows in deliveries:
        pair.set_rows(rows)
