"""Mode changes at run time: the gate in front of forward moves, the audit log behind
every move, and the rollback ledger that says whether going back would lose data.

    legacy-only -> shadow -> cutover -> candidate-only      forward
    candidate-only -> cutover -> shadow -> legacy-only      back (rollback): never gated

A forward move that gives the candidate the primary role or drops the legacy build
(`is_gated`) needs the gate to hold, or `force` with a reason. A forward move that jumps
over a mode (`skipped`: shadow -> candidate-only stops the legacy build's writes before the
candidate ever served a client) also needs `skip` with a reason. A change is persisted
(meta key "mode"), then applied to `ModeState`, so new requests see it at once while
in-flight requests finish under the mode they started in.

Errors of a mode request:
    CutoverError
     +-- BadRequest    unknown mode, same mode, force, skip or reset without a    (HTTP 400)
                       reason, a skipping move without `skip`
     +-- GateRefused   the gate does not hold; `.result` carries every reason     (HTTP 409)
     +-- WritesInFlight  the old mode's writes did not finish in time              (HTTP 409)

A change waits, bounded by `proxy.mode_change_wait`, for the writes already sent to finish
on both backends (see `shadow.writes.barrier`); forced past that, it marks the shadow
diverged rather than let the two databases give one id to different rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shadow.tasks import cancelled
from shadow.gate import GateResult, GateStats, Thresholds, evaluate
from shadow.modes import MODES, ORDER, Mode, is_forward, roles
from shadow.rollback import RollbackLedger
from shadow.routes import SAFE_METHODS
from shadow.verdict import Comparison
from shadow.writes.barrier import BarrierTimeout

if TYPE_CHECKING:
    from shadow.app import Runtime

log = logging.getLogger("shadow.cutover")
REFRESH_SECONDS = 2.0
_LEGACY_AS_SHADOW = roles(Mode.CUTOVER).shadow


class CutoverError(Exception):
    """A mode request that cannot be carried out."""


class BadRequest(CutoverError):
    """The request itself is wrong (HTTP 400)."""


class WritesInFlight(CutoverError):
    """The writes of the old mode did not complete in time (HTTP 409)."""


class GateRefused(CutoverError):
    """The gate does not hold for a gated move (HTTP 409)."""

    def __init__(self, result: GateResult) -> None:
        self.result = result
        super().__init__("; ".join(result.reasons))


@dataclass(frozen=True, slots=True)
class Change:
    """One mode change that happened. `forced`: the gate refused and was overridden."""

    from_mode: str
    to_mode: str
    forced: bool
    gate: GateResult
    skipped: tuple[str, ...] = ()


def is_gated(current: Mode | str, target: Mode | str) -> bool:
    """True for forward moves that give the candidate the primary role or drop legacy."""
    return is_forward(current, target) and Mode(target) in (Mode.CUTOVER, Mode.CANDIDATE_ONLY)


def skipped(current: Mode | str, target: Mode | str) -> tuple[Mode, ...]:
    """The modes a forward move from `current` to `target` jumps over (none going back)."""
    start, end = ORDER.index(Mode(current)), ORDER.index(Mode(target))
    return ORDER[start + 1:end]


def check_skip(current: Mode, target: Mode, skip: bool, reason: str) -> tuple[Mode, ...]:
    """The modes the move skips; raises BadRequest unless that is asked for with a reason."""
    jumped = skipped(current, target)
    names = ", ".join(str(m) for m in jumped)
    if jumped and not skip:
        raise BadRequest(f"{current} -> {target} skips {names}; move one mode at a time, "
                         f"or ask for the skip with a reason")
    if jumped and not reason:
        raise BadRequest(f"skipping {names} needs a reason")
    return jumped


class Cutover:
    """The mode controller of one runtime: gate stats, rollback ledger, mode requests.
    Build with `await Cutover.attach(runtime)`; `await stop()` saves the counts."""

    def __init__(self, runtime: Runtime, thresholds: Thresholds) -> None:
        self.runtime = runtime
        self.thresholds = thresholds
        self.stats = GateStats(time.time())
        self.ledger = RollbackLedger()
        self.who = runtime.config.admin_token_name
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._labelled: set[tuple[str, str]] = set()

    @classmethod
    async def attach(cls, runtime: Runtime) -> Cutover:
        """Load the saved window and ledger, listen to the verifier, start refreshing."""
        g = runtime.config.gate
        cutover = cls(runtime, Thresholds(g.min_compared, g.max_mismatch_rate,
                                          g.max_shadow_error_rate, tuple(g.expected_routes),
                                          g.max_raced_share))
        store = runtime.store
        cutover.stats = GateStats.from_json(await store.get_meta("gate"), time.time())
        cutover.ledger = RollbackLedger.from_json(await store.get_meta("rollback"))
        runtime.verifier.listeners.append(cutover.observe)
        cutover.gate()
        cutover._task = asyncio.get_running_loop().create_task(
            cutover._refresh_forever(), name="shadow-cutover-refresh")
        return cutover

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)
        await self.flush()

    def observe(self, c: Comparison) -> None:
        """Verifier listener: feed the gate, and the ledger with writes legacy failed."""
        ex = c.exchange
        self.stats.observe(ex.method, ex.route, c.verdict)
        if any(str(d.kind).startswith("row_") for d in c.differences):
            self.stats.row_mismatch(f"{ex.method} {ex.route}")
        shadow = c.shadow
        if shadow is None or shadow.backend != _LEGACY_AS_SHADOW or ex.method in SAFE_METHODS:
            return
        reply = shadow.reply
        if (reply.error is not None and reply.error != "too_large") or reply.status >= 500:
            self.ledger.write_failed(f"{ex.method} {ex.route}")
            self.runtime.metrics.rollback_unsafe_writes.labels(ex.route).inc()

    def gate(self) -> GateResult:
        """The gate's answer now; also brings the gate metrics up to date."""
        findings = getattr(self.runtime, "findings", None)
        result = (findings.gate(self.stats, self.thresholds) if findings is not None
                  else evaluate(self.stats, self.thresholds))
        metrics = self.runtime.metrics
        metrics.gate_passed.set(1 if result.passed else 0)
        needed: dict[tuple[str, str], int] = {}
        for route in result.routes:
            method = route.route.partition(" ")[0] if " " in route.route else "any"
            key = (route.template, method)
            needed[key] = max(needed.get(key, 0), route.compared_needed)
        for labels in self._labelled - needed.keys():
            with contextlib.suppress(KeyError):
                metrics.gate_compared_needed.remove(*labels)
        for labels, n in needed.items():
            metrics.gate_compared_needed.labels(*labels).set(n)
        self._labelled = set(needed)
        return result

    def status(self) -> dict[str, Any]:
        """Mode, roles, gate, rollback safety and mirror lane, as the admin API shows them."""
        rt, current = self.runtime, self.runtime.modes.current
        result = self.gate()
        forward = ORDER[ORDER.index(current.mode) + 1] if current.mode != ORDER[-1] else None

        def backend(name: str | None) -> dict[str, str] | None:
            return None if name is None else {"backend": name, "label": rt.config.label(name)}

        return {
            "mode": str(current.mode), "modes": list(MODES),
            "primary": backend(current.primary), "shadow": backend(current.shadow),
            "next": None if forward is None else {
                "mode": str(forward), "gated": is_gated(current.mode, forward)},
            "gate": result.to_dict(),
            "rollback": self.ledger.safety(current.primary == "legacy", self._diverged()),
            "mirror": {"depth": rt.lane.depth if rt.lane else 0,
                       "busy": rt.lane.busy if rt.lane else 0,
                       "lag_seconds": round(rt.verifier.lag.current, 3) if rt.verifier else 0.0,
                       "lag_allowance_seconds": rt.verifier.lag.allowance if rt.verifier else 0.0},
            "counts": {"concluded": rt.verifier.concluded if rt.verifier else 0,
                       "held": len(rt.verifier.holding or ()) if rt.verifier else 0,
                       "rechecks": rt.verifier.recheck.status()
                       if rt.verifier and rt.verifier.recheck is not None else None,
                       "compared": result.compared, "mismatches": result.mismatches,
                       "raced": result.raced, "shadow_errors": result.shadow_errors},
            "writes": self._writes_status(),
            "rows": self._rows_status(),
        }

    def _diverged(self) -> str | None:
        rows = self.runtime.rows
        return rows.diverged if rows is not None else None

    def _writes_status(self) -> dict[str, Any]:
        causality, attribution = self.runtime.writes.causality, self.runtime.writes.attribution
        status: dict[str, Any] = {
            "ordered": causality is not None,
            "shadow_pending": causality.pending if causality else 0,
            "parked": causality.parked if causality else 0}
        if attribution is not None:
            status.update(attribution.status())
        return status

    def _rows_status(self) -> dict[str, Any]:
        rows = self.runtime.rows
        if rows is None:
            return {"enabled": False}
        counts = rows.capture_counts()
        capture = {}
        for backend, st in rows.status.items():
            changes, lost = counts.get(backend, (0, 0))
            capture[backend] = {"installed": st.installed, "healthy": st.healthy,
                                "problems": st.problems(), "schema_changes": changes,
                                "lost_changes": lost, **rows.schema_seen(backend)}
            parts = getattr(rows.captures[backend], "statuses", {})
            if len(parts) > 1:
                capture[backend]["databases"] = {
                    db: {"installed": part.installed, "healthy": part.healthy,
                         "captured": list(part.captured), "problems": part.problems()}
                    for db, part in parts.items()}
        return {"enabled": True, "diverged": rows.diverged, "keymap_size": len(rows.keymap),
                "capture": capture}

    async def resync_rows(self, reason: str) -> dict[str, Any]:
        """The operator has re-copied the data: clear divergence, the key map and the
        window's row mismatches (audit-logged)."""
        reason = reason.strip()
        if not reason:
            raise BadRequest("a resync needs a reason (e.g. how the data was re-copied)")
        rows = self.runtime.rows
        if rows is None:
            raise BadRequest("row verification is off: no database on both backends")
        async with self._lock:
            rows.resync()
            self.stats.set_diverged(False)
            self.stats.resolve_row_mismatches()
            mode = self.runtime.modes.current.mode
            await self._audit("rows_resync", mode, mode, False, reason, self.gate())
            await self.runtime.save_rows()
            await self.flush()
        return self.status()

    async def change(self, target: str, *, force: bool = False, reason: str = "",
                     skip: bool = False) -> Change:
        """Move to mode `target`; raises BadRequest, or GateRefused (audit-logged too).
        `skip` allows a forward move over a mode (it needs a reason)."""
        if target not in MODES:
            raise BadRequest(f"unknown mode {target!r}; modes: {', '.join(MODES)}")
        reason = reason.strip()
        if force and not reason:
            raise BadRequest("a forced change needs a reason")
        wanted = Mode(target)
        async with self._lock:
            current = self.runtime.modes.current.mode
            if wanted == current:
                raise BadRequest(f"already in mode {current}")
            jumped = check_skip(current, wanted, skip, reason)
            result = self.gate()
            gated = is_gated(current, wanted)
            if gated and not result.passed and not force:
                await self._audit("mode_refused", current, wanted, False, reason, result)
                raise GateRefused(result)

            async def apply() -> None:
                await self.runtime.store.set_meta("mode", str(wanted))
                self.runtime.modes.set(wanted)

            left = ""
            barrier = self.runtime.writes.barrier
            try:
                if barrier is None:
                    await apply()
                else:
                    left = await barrier.switch(self.runtime.config.proxy.mode_change_wait,
                                                apply, force=force)
            except BarrierTimeout as exc:
                await self._audit("mode_refused", current, wanted, False,
                                  f"{reason} (still in flight: {exc.pending})".strip(), result)
                raise WritesInFlight(
                    f"the writes of mode {current} did not finish in "
                    f"{self.runtime.config.proxy.mode_change_wait:g} s: {exc.pending}; "
                    "retry, or force with a reason (the shadow is then marked diverged)") from exc
            if left and self.runtime.rows is not None:
                self.runtime.rows.diverge(f"mode forced from {current} to {wanted} with {left}")
            if wanted == Mode.CUTOVER and current in (Mode.LEGACY_ONLY, Mode.SHADOW):
                self.ledger.begin()
            elif wanted == Mode.CANDIDATE_ONLY:
                self.ledger.skip_legacy()
            forced = (gated and not result.passed) or bool(left)
            await self._audit("mode_change", current, wanted, forced, reason, result)
            await self.flush()
            return Change(str(current), str(wanted), forced, result,
                          tuple(str(m) for m in jumped))

    async def reset(self, reason: str) -> GateResult:
        """Start a new gate window (audit-logged with the answer of the old one)."""
        reason = reason.strip()
        if not reason:
            raise BadRequest("a gate reset needs a reason")
        async with self._lock:
            result = self.gate()
            self.stats.reset(time.time())
            mode = self.runtime.modes.current.mode
            await self._audit("gate_reset", mode, mode, False, reason, result)
            await self.flush()
            return self.gate()

    async def flush(self) -> None:
        """Save the gate window and the ledger if they changed."""
        store = self.runtime.store
        for key, state in (("gate", self.stats), ("rollback", self.ledger)):
            if state.dirty:
                state.dirty = False
                try:
                    await store.set_meta(key, state.to_json())
                except BaseException:
                    state.dirty = True
                    raise

    async def _audit(self, action: str, from_mode: Mode, to_mode: Mode, forced: bool,
                     reason: str, result: GateResult) -> None:
        gate = {"passed": result.passed, "reasons": list(result.reasons),
                "compared": result.compared, "mismatches": result.mismatches,
                "rollback": self.ledger.safety()}
        await self.runtime.store.add_audit(action=action, from_mode=str(from_mode),
                                           to_mode=str(to_mode), forced=forced, reason=reason,
                                           who=self.who, gate=gate)
        level = logging.WARNING if action == "mode_refused" or forced else logging.INFO
        log.log(level, action.replace("_", " "), extra={
            "from_mode": str(from_mode), "to_mode": str(to_mode), "forced": forced,
            "reason": reason, "who": self.who, "gate_passed": result.passed})

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                self.gate()
                await self.flush()
            except Exception as exc:  # counted and logged; the next round tries again
                self.runtime.raised("cutover_refresh", exc)
