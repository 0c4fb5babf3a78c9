"""The rollback ledger: whether going back to the legacy build now would lose data.

From the moment a cutover gives the candidate the primary role, every write the legacy
build did not take (it failed there, or candidate-only sent it nowhere else) is counted per
"METHOD /template". A rollback is clean only when that count is zero, candidate-only never
ran, and the two databases did not diverge. The ledger is persisted by `shadow.cutover`.
"""

from __future__ import annotations

from typing import Any


class RollbackLedger:
    """Writes the legacy build did not take since the cutover began, per "METHOD /template".
    `legacy_skipped` is set once candidate-only ran: legacy then missed every write."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.legacy_skipped = False
        self.dirty = False

    def write_failed(self, route: str) -> None:
        self.counts[route] = self.counts.get(route, 0) + 1
        self.dirty = True

    def skip_legacy(self) -> None:
        """Candidate-only begins: from now on legacy receives no writes at all."""
        self.legacy_skipped = True
        self.dirty = True

    def begin(self) -> None:
        """A new cutover from a legacy-primary mode: nothing is lost yet."""
        self.counts.clear()
        self.legacy_skipped = False
        self.dirty = True

    def safety(self, legacy_primary: bool = False, diverged: str | None = None) -> dict[str, Any]:
        """Whether a rollback now is clean, and if not, how many writes on which routes.
        With `legacy_primary` (after a rollback) the numbers are those of the last cutover.
        `diverged`: why the two databases no longer hold the same rows, if they do not."""
        lost = sum(self.counts.values())
        clean = lost == 0 and not self.legacy_skipped and not diverged
        parts = [f"{lost} write(s) failed on the legacy build"] if lost else []
        if self.legacy_skipped:
            parts.append("candidate-only mode sent no writes to the legacy build")
        if diverged:
            parts.append(f"the databases diverged ({diverged})")
        if legacy_primary:
            summary = ("the legacy build missed no writes" if clean else
                       "the last cutover lost data on the legacy build: " + "; ".join(parts))
        elif clean:
            summary = "rollback is clean: every write since the cutover reached the legacy build"
        else:
            summary = "rollback would lose data: " + "; ".join(parts)
        return {"clean": clean, "unsafe_writes": lost, "routes": dict(sorted(self.counts.items())),
                "legacy_missed_writes": self.legacy_skipped, "summary": summary}

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "legacy_skipped": self.legacy_skipped}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RollbackLedger:
        ledger = cls()
        if data:
            ledger.counts = {k: int(v) for k, v in data.get("counts", {}).items()}
            ledger.legacy_skipped = bool(data.get("legacy_skipped", False))
        return ledger
