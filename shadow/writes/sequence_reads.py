"""The two sequences of a table read for a held key difference that waits only on them.

See `shadow.writes.reconcile`: neither change log shows a burnt sequence value, so a key
difference with nothing else left to wait for asks for the positions of its table's two
sequences (`Reconcile.asking`). They are read here, after a drain of the primary, and
only while no exchange that may write is open on either backend (`quiet`: no write, no
read of a route seen writing): a write in flight could have taken a value on one side and
not yet on the other, and a shadow behind the primary has not yet taken what the primary
took. Reads that never wrote may run meanwhile: a busy proxy is seldom without one. The
reads are kept only when no exchange began between them (`quiet` still, and the same
`epoch`); otherwise they are tried again after a later drain. A held difference whose sequences are never read so is reported when its
wait ends, as it stands. The positions read also become the table's anchor (see
`shadow.rows.sequences`): the next pair of new rows is expected from where the sequences
truly stand. Each read is one short query per side (`Capture.sequence_position`), made
only while a key difference is held.
"""

from __future__ import annotations

from collections.abc import Callable

from shadow.rows.live import RowState
from shadow.writes.reconcile import Reconcile


class SequenceReads:
    """Reads the sequences `reconcile` asks for, when the backends are quiet."""

    def __init__(self, rows: RowState, reconcile: Reconcile, *, quiet: Callable[[], bool],
                 epoch: Callable[[], int]) -> None:
        self.rows = rows
        self.reconcile = reconcile
        self.quiet = quiet
        self.epoch = epoch
        self.read_tables = 0  # tables whose two sequences were read and handed in

    async def read(self) -> None:
        wanted = self.reconcile.asking()
        if not wanted or not self.quiet():
            return
        began = self.epoch()
        found = []
        for roles, table in sorted(wanted):
            positions = None
            if roles[1]:
                primary = await self.rows.sequence_position(roles[0], table)
                shadow = await self.rows.sequence_position(roles[1], table)
                if primary is not None and shadow is not None:
                    positions = (primary, shadow)
            found.append((roles, table, positions))
        if not self.quiet() or self.epoch() != began:
            return
        for roles, table, positions in found:
            if positions is not None:  # later keys are expected from where they truly stand
                self.rows.place_anchor(roles, table, positions)
            self.reconcile.sequences(roles, table, positions)
            self.read_tables += 1
