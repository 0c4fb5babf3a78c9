"""The findings of a running proxy: a verifier listener that turns each published
Comparison into causes, cascade links and version sightings for the store, and the
operations on findings (triage, candidate version, the gate's view).

`observe` runs on the verifier's path and never waits: it folds into the store's pending
writes. It folds the comparison as `safe` gives it (shadow.privacy: every key that is
itself a value fingerprinted in each difference's path), so no finding's key, title,
evidence or proposed rule holds a value from the traffic. A finding asks for a sample of its own until it has `samples_per_finding`, so
every finding's page has evidence even when its signatures' samples are full.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shadow.tasks import cancelled
from shadow.findings import queries
from shadow.findings.cascade import CascadeTracker
from shadow.findings.group import ROW_KINDS, causes
from shadow.findings.triage import TriageError, blocks, change, reopens
from shadow.findings.window import GateWindow
from shadow.gate import GateResult, GateStats, Thresholds, evaluate_with_findings
from shadow.store import Store
from shadow.verdict import Comparison, Verdict

CANDIDATE = "candidate"
VERSION_META = "candidate_version"
WINDOW_META = "findings_window"
_VERSION = re.compile(r"[\w.+:/-]{1,100}")


class NotFound(LookupError):
    """No finding has that number."""


@dataclass(slots=True)
class _Known:
    """What the recorder keeps in memory of one finding: its number once stored, its
    state and the candidate version that state was set under."""

    id: int | None
    state: str
    version: str | None
    reason: str = ""


def valid_version(text: str) -> str:
    """A candidate version as given (`1.4.2`, `2026-12-04+abc123`); raises ValueError."""
    text = text.strip()
    if not _VERSION.fullmatch(text):
        raise ValueError("a version is 1-100 characters of letters, digits and . + : / - _")
    return text


class Findings:
    """Findings of one runtime. Build with `await Findings.open(...)`."""

    def __init__(self, store: Store, *, version_header: str | None, who: str,
                 since: Callable[[], float], sample: Callable[[Comparison], dict] | None,
                 raised: Callable[[str, BaseException], None],
                 safe: Callable[[Comparison], Comparison]) -> None:
        self.store = store
        self.version_header = version_header
        self.who = who
        self.since = since
        self.sample = sample
        self.raised = raised
        self.safe = safe
        self.version: str | None = None
        self.tracker = CascadeTracker()
        self.window = GateWindow()
        self.known: dict[str, _Known] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, store: Store, **kwargs: Any) -> Findings:
        findings = cls(store, **kwargs)
        findings.version = await store.get_meta(VERSION_META)
        findings.window = GateWindow.from_json(await store.get_meta(WINDOW_META))
        for row in await store.rows("SELECT id, key, state, state_version, reason FROM findings"):
            findings.known[row["key"]] = _Known(row["id"], row["state"], row["state_version"],
                                                row["reason"])
        findings._task = asyncio.get_running_loop().create_task(
            findings._save_forever(), name="shadow-findings-save")
        return findings

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)
        await self.save()

    # --- the listener ------------------------------------------------------------------

    def version_of(self, c: Comparison) -> str | None:
        """The candidate's version for this exchange: the configured header of its reply,
        else the version set with `shadow candidate-version`."""
        if self.version_header:
            for obs in (c.primary, c.shadow):
                if obs is not None and obs.backend == CANDIDATE:
                    value = obs.reply.header(self.version_header)
                    if value and _VERSION.fullmatch(value.strip()):
                        return value.strip()
        return self.version

    def observe(self, c: Comparison) -> None:
        """Verifier listener: record the findings of a mismatching exchange (a raced
        one is no evidence of a cause: the store keeps it apart)."""
        if not c.differences or c.verdict is Verdict.RACED:
            return
        ex, store = c.exchange, self.store
        safe = self.safe(c)
        found = causes(safe)
        version = self.version_of(c)
        links = self.tracker.observe(safe, found)
        if not store.sampled(ex.id) and self.sample is not None and any(
                store.findings.wants_sample(cause.key) for cause in found):
            store.add_sample(found[0].signatures[0], exchange_id=ex.id, route=ex.route,
                             method=ex.method, sample=self.sample(c), asked=True)
            store.findings.sampled_for([cause.key for cause in found])
        store.sample_version(ex.id, version)
        store.findings.record(exchange_id=ex.id, causes=found, links=links, version=version)
        for cause in found:
            known = self.known.get(cause.key)
            if known is None:
                self.known[cause.key] = _Known(None, "new", None)
            elif reopens(known.state, known.version, version):
                known.state, known.version = "new", version
                known.reason = f"seen again under candidate version {version or 'unknown'}"
                store.findings.reopen(cause.key, version)
        rows = any(d.kind in ROW_KINDS for d in c.differences)
        self.window.observe(self.since(), f"{ex.method} {ex.route}",
                            (cause.key for cause in found), rows)

    # --- operations --------------------------------------------------------------------

    async def triage(self, finding_id: int, state: str, reason: str, who: str) -> dict:
        """Change a finding's state (raises NotFound, TriageError); audit-logged."""
        await self.store.flush()
        found = await queries.one(self.store, finding_id, time.time())
        if found is None:
            raise NotFound(f"no finding #{finding_id}")
        own = [s["path"] for s in found["signatures"] if not s["dependent"]]
        decided = change(found["state"], state, reason, version=self.version_for_triage(found),
                         kind=found["kind"], route=found["route"], paths=own)
        now = time.time()
        await self.store.write([
            ("UPDATE findings SET state = ?, reason = ?, state_at = ?, state_version = ?,"
             " rule = ? WHERE id = ?", (str(decided.state), decided.reason, now,
                                        decided.version, decided.rule, finding_id)),
            ("INSERT INTO audit (at, action, from_mode, to_mode, forced, reason, who, gate,"
             " subject) VALUES (?, 'finding_state', ?, ?, 0, ?, ?, ?, ?)",
             (now, found["state"], str(decided.state), decided.reason, who,
              f'{{"finding": {finding_id}}}', f"#{finding_id} {found['key']}")),
        ])
        self.known[found["key"]] = _Known(finding_id, str(decided.state), decided.version,
                                          decided.reason)
        return await queries.one(self.store, finding_id, time.time()) or {}

    def version_for_triage(self, finding: dict) -> str | None:
        """The version a state is set under: the newest version the finding was seen in,
        else the configured one."""
        seen = [v for v in finding.get("versions", ()) if v["version"]]
        if seen:
            return max(seen, key=lambda v: v["last_seen"])["version"]
        return self.version

    async def set_version(self, version: str, reason: str, who: str) -> str:
        """Set the candidate version used when its replies carry none (audit-logged)."""
        try:
            version = valid_version(version)
        except ValueError as exc:
            raise TriageError(str(exc)) from None
        old, self.version = self.version, version
        await self.store.set_meta(VERSION_META, version)
        await self.store.add_audit(action="candidate_version", from_mode=old, to_mode=version,
                                   forced=False, reason=reason.strip(), who=who, gate={},
                                   subject="candidate version")
        return version

    def gate(self, stats: GateStats, thresholds: Thresholds) -> GateResult:
        """The gate's answer with the findings it counted and those it did not."""
        self.window.sync(stats.since)

        def blocking(key: str) -> bool:
            known = self.known.get(key)
            return known is None or blocks(known.state)

        counted, uncounted = [], []
        for key, n in sorted(self.window.exchanges().items(), key=lambda kv: -kv[1]):
            known = self.known.get(key) or _Known(None, "new", None)
            entry = {"id": known.id, "finding": key, "state": known.state, "exchanges": n}
            if blocking(key):
                counted.append({**entry, "why": f"{known.state}: counts against its route"})
            else:
                uncounted.append({**entry, "why": f"{known.state}: {known.reason}"})
        return evaluate_with_findings(stats, thresholds, self.window.excused(blocking),
                                      counted, uncounted)

    async def save(self) -> None:
        """Persist the gate window and learn the numbers of findings stored since."""
        if self.window.dirty:
            self.window.dirty = False
            await self.store.set_meta(WINDOW_META, self.window.to_json())
        missing = [key for key, known in self.known.items() if known.id is None]
        if missing:
            await self.store.flush()
            for row in await self.store.rows("SELECT id, key FROM findings"):
                known = self.known.get(row["key"])
                if known is not None and known.id is None:
                    known.id = row["id"]

    async def _save_forever(self, every: float = 2.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.save()
            except Exception as exc:
                self.raised("findings_save", exc)
