"""The findings' tables in the state store, and what is waiting to be written to them.

`FindingTables` folds what the recorder reports (never waits) and writes it inside the
store's flush transaction: findings upserted by key, their signatures (own or dependent),
per-minute counts, per-version first/last seen, cascade links, the samples that show them,
and state changes the recorder decided (a fixed finding reopened). Reads are in
`shadow.findings.queries`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiosqlite
import orjson

from shadow.findings.cascade import Link
from shadow.findings.group import Cause

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS findings (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, method TEXT NOT NULL,
        route TEXT NOT NULL, kind TEXT NOT NULL, what TEXT NOT NULL, tbl TEXT,
        count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'new', reason TEXT NOT NULL DEFAULT '',
        state_at REAL, state_version TEXT, rule TEXT NOT NULL DEFAULT '');
    CREATE TABLE IF NOT EXISTS finding_signatures (
        finding_id INTEGER NOT NULL, signature TEXT NOT NULL, dependent INTEGER NOT NULL,
        count INTEGER NOT NULL, PRIMARY KEY (finding_id, signature));
    CREATE TABLE IF NOT EXISTS finding_minutes (
        finding_id INTEGER NOT NULL, minute INTEGER NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (finding_id, minute));
    CREATE TABLE IF NOT EXISTS finding_versions (
        finding_id INTEGER NOT NULL, version TEXT NOT NULL, count INTEGER NOT NULL,
        first_seen REAL NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (finding_id, version));
    CREATE TABLE IF NOT EXISTS finding_links (
        finding_id INTEGER NOT NULL, cause_id INTEGER NOT NULL, evidence TEXT NOT NULL,
        count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        PRIMARY KEY (finding_id, cause_id));
    CREATE TABLE IF NOT EXISTS sample_findings (
        sample_id INTEGER NOT NULL, finding_id INTEGER NOT NULL,
        PRIMARY KEY (sample_id, finding_id));
    CREATE INDEX IF NOT EXISTS sample_findings_by_finding ON sample_findings (finding_id, sample_id);
    ALTER TABLE samples ADD COLUMN candidate_version TEXT;
    ALTER TABLE audit ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    """,
)
"""Schema steps after the store's first schema, applied in order once each
(PRAGMA user_version counts the steps applied)."""

UNKNOWN_VERSION = ""
_ID = "(SELECT id FROM findings WHERE key = ?)"


@dataclass(slots=True)
class _Pending:
    findings: dict[str, list[Any]] = field(default_factory=dict)
    signatures: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    minutes: dict[tuple[str, int], int] = field(default_factory=dict)
    versions: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    links: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    reopened: list[tuple[str, float, str | None]] = field(default_factory=list)


KEPT_STATES = ("acknowledged", "expected", "noise")
"""States an operator chose: a finding in one of them is never evicted (it records a
decision the gate honours) and does not count against the cap; their number grows only
with the operator's actions."""


class FindingTables:
    """The write side of the findings' tables. `samples_per_finding` caps the samples
    kept for each finding (newest kept); past `max_findings` untriaged findings (new or
    fixed), each flush evicts the least frequent and least recent of them with everything
    attached to them, and reports how many to `on_evicted(n)`."""

    def __init__(self, samples_per_finding: int = 5, max_findings: int = 1000) -> None:
        self.samples_per_finding = samples_per_finding
        self.max_findings = max_findings
        self.on_evicted: Callable[[int], None] = lambda n: None
        self._pending = _Pending()
        self.sample_counts: dict[str, int] = {}
        self._asked: dict[str, int] = {}

    async def load(self, db: aiosqlite.Connection) -> None:
        async with db.execute("SELECT f.key, count(*) FROM sample_findings s JOIN findings f"
                              " ON f.id = s.finding_id GROUP BY f.key") as cur:
            self.sample_counts = {key: n async for key, n in cur}

    def wants_sample(self, key: str) -> bool:
        """True while the finding holds, or was given since the last flush, fewer samples
        than its cap."""
        held = self.sample_counts.get(key, 0) + self._asked.get(key, 0)
        return held < self.samples_per_finding

    def sampled_for(self, keys: list[str]) -> None:
        """A sample was just kept for findings `keys` (counted until it is written)."""
        for key in keys:
            self._asked[key] = self._asked.get(key, 0) + 1

    def record(self, *, exchange_id: str, causes: tuple[Cause, ...], links: list[Link],
               version: str | None, now: float | None = None) -> None:
        """Fold one exchange's causes. A sample the store keeps of this exchange (before
        or after this call) is linked to them when written."""
        now = time.time() if now is None else now
        p, minute, ver = self._pending, int(now // 60), version or UNKNOWN_VERSION
        for cause in causes:
            entry = p.findings.get(cause.key)
            if entry is None:
                p.findings[cause.key] = [cause.method, cause.route, cause.kind, cause.what,
                                         cause.table, 1, now, now]
            else:
                entry[5] += 1
                entry[7] = now
            dependents = set(cause.dependents)
            for sig in cause.signatures:
                counted = p.signatures.setdefault((cause.key, sig), [int(sig in dependents), 0])
                counted[1] += 1
            p.minutes[(cause.key, minute)] = p.minutes.get((cause.key, minute), 0) + 1
            seen = p.versions.get((cause.key, ver))
            if seen is None:
                p.versions[(cause.key, ver)] = [1, now, now]
            else:
                seen[0] += 1
                seen[2] = now
            p.samples.setdefault(exchange_id, []).append(cause.key)
        for link in links:
            seen = p.links.get((link.finding, link.cause))
            if seen is None:
                p.links[(link.finding, link.cause)] = [link.evidence, 1, now, now]
            else:
                seen[1] += 1
                seen[3] = now

    def reopen(self, key: str, version: str | None, now: float | None = None) -> None:
        """A fixed finding was seen again under another version: back to new."""
        self._pending.reopened.append((key, time.time() if now is None else now, version))

    async def flush(self, db: aiosqlite.Connection, sample_ids: dict[str, int], who: str) -> None:
        """Write what was folded, inside the caller's transaction. `sample_ids` maps the
        exchange ids of the samples just inserted to their ids."""
        p, self._pending = self._pending, _Pending()
        self._asked.clear()
        await db.executemany(
            """INSERT INTO findings (key, method, route, kind, what, tbl, count, first_seen,
               last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET
               count = count + excluded.count, last_seen = excluded.last_seen""",
            [(key, *entry) for key, entry in p.findings.items()])
        await db.executemany(
            f"""INSERT INTO finding_signatures VALUES ({_ID}, ?, ?, ?) ON CONFLICT
                (finding_id, signature) DO UPDATE SET count = count + excluded.count,
                dependent = min(dependent, excluded.dependent)""",
            [(key, sig, dep, n) for (key, sig), (dep, n) in p.signatures.items()])
        await db.executemany(
            f"""INSERT INTO finding_minutes VALUES ({_ID}, ?, ?) ON CONFLICT (finding_id, minute)
                DO UPDATE SET count = count + excluded.count""",
            [(key, minute, n) for (key, minute), n in p.minutes.items()])
        await db.executemany(
            f"""INSERT INTO finding_versions VALUES ({_ID}, ?, ?, ?, ?) ON CONFLICT
                (finding_id, version) DO UPDATE SET count = count + excluded.count,
                last_seen = excluded.last_seen""",
            [(key, ver, *v) for (key, ver), v in p.versions.items()])
        await db.executemany(
            f"""INSERT INTO finding_links VALUES ({_ID}, {_ID}, ?, ?, ?, ?) ON CONFLICT
                (finding_id, cause_id) DO UPDATE SET count = count + excluded.count,
                last_seen = excluded.last_seen""",
            [(f, c, *v) for (f, c), v in p.links.items()])
        links = [(sample_ids[ex], key) for ex, keys in p.samples.items() if ex in sample_ids
                 for key in keys]
        await db.executemany(f"INSERT OR IGNORE INTO sample_findings VALUES (?, {_ID})", links)
        for _, key in links:
            self.sample_counts[key] = self.sample_counts.get(key, 0) + 1
        for key in {key for _, key in links}:
            await db.execute(
                f"""DELETE FROM sample_findings WHERE finding_id = {_ID} AND sample_id NOT IN (
                    SELECT sample_id FROM sample_findings WHERE finding_id = {_ID}
                    ORDER BY sample_id DESC LIMIT ?)""", (key, key, self.samples_per_finding))
        for key, at, version in p.reopened:
            cur = await db.execute(
                "UPDATE findings SET state = 'new', reason = ?, state_at = ?, state_version = ?"
                " WHERE key = ? AND state = 'fixed'",
                (f"seen again under candidate version {version or 'unknown'}", at, version, key))
            if cur.rowcount:
                await db.execute(
                    "INSERT INTO audit (at, action, from_mode, to_mode, forced, reason, who, gate,"
                    " subject) VALUES (?, 'finding_reopened', 'fixed', 'new', 0, ?, ?, ?, ?)",
                    (at, f"seen again under candidate version {version or 'unknown'}", who,
                     orjson.dumps({"finding": key}).decode(), key))

        if p.findings:
            evicted = await self._evict(db, now=max(e[7] for e in p.findings.values()))
            if evicted:
                self.on_evicted(evicted)

    async def _evict(self, db: aiosqlite.Connection, now: float | None = None) -> int:
        """Delete the untriaged findings past `max_findings`, weighted as signatures are
        (count / (1 + hours since last seen), the oldest first among equals), with their
        signatures, minutes, versions, sample links and cascade links both ways."""
        kept = ", ".join("?" * len(KEPT_STATES))
        async with db.execute(f"SELECT count(*) FROM findings WHERE state NOT IN ({kept})",
                              KEPT_STATES) as cur:
            (total,) = await cur.fetchone()
        excess = total - self.max_findings
        if excess <= 0:
            return 0
        now = time.time() if now is None else now
        async with db.execute(
                f"""SELECT id, key FROM findings WHERE state NOT IN ({kept})
                    ORDER BY count / (1.0 + max(0.0, ? - last_seen) / 3600.0), last_seen
                    LIMIT ?""", (*KEPT_STATES, now, excess)) as cur:
            victims = [tuple(row) async for row in cur]
        ids = [(i,) for i, _ in victims]
        for table in ("finding_signatures", "finding_minutes", "finding_versions",
                      "sample_findings", "finding_links"):
            await db.executemany(f"DELETE FROM {table} WHERE finding_id = ?", ids)
        await db.executemany("DELETE FROM finding_links WHERE cause_id = ?", ids)
        await db.executemany("DELETE FROM findings WHERE id = ?", ids)
        for _, key in victims:
            self.sample_counts.pop(key, None)
        return len(victims)

    @property
    def pending(self) -> bool:
        p = self._pending
        return bool(p.findings or p.links or p.reopened)

    async def after_prune(self, db: aiosqlite.Connection, cutoff: float) -> None:
        """Forget links to samples the store deleted, and per-minute counts older than
        `cutoff`."""
        await db.execute("DELETE FROM sample_findings WHERE sample_id NOT IN (SELECT id FROM samples)")
        await db.execute("DELETE FROM finding_minutes WHERE minute < ?", (int(cutoff // 60),))
        await db.commit()
        await self.load(db)
