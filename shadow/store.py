"""The state store: an embedded SQLite file (aiosqlite) for everything that must outlive a
restart — the mode, the audit log, mismatch signatures with their samples, and
key-value state of other modules (gate window, key map, divergence).

Mismatches arrive on the verifier's path, so `record()` never waits: counts are folded in
memory and written by a background flusher in one transaction every `flush_interval`
seconds. Samples are kept per signature up to a cap (newest kept, at most one new sample
per signature every `sample_interval` seconds once the cap is reached) and dropped after
the retention period. At most `max_signatures` signatures are kept: past it, each flush
evicts the least frequent and least recent ones, with their samples (`on_evicted(n)`).
Samples reach the store only as shadow.privacy builds them.

The findings' tables (shadow.findings.storage) are written in the same flush; a finding
asks for samples of its own, and a sample it holds is not trimmed with its signature's.
The schema and its numbered steps are in shadow.store_schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import orjson

from shadow import jsonable
from shadow.findings.storage import FindingTables
from shadow.store_schema import SCHEMA, migrate

log = logging.getLogger("shadow.store")

@dataclass(slots=True)
class _Pending:
    counts: dict[str, list[Any]] = field(default_factory=dict)  # sig -> [method, route, kind, path, n, first, last]
    hours: dict[tuple[str, int], int] = field(default_factory=dict)
    samples: list[tuple] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    reads: list[tuple] = field(default_factory=list)


class Store:
    """The state store. Open with `await Store.open(...)`, close with `await close()`."""

    def __init__(self, db: aiosqlite.Connection, *, samples_per_signature: int,
                 max_signatures: int, retention_hours: float, flush_interval: float,
                 sample_interval: float) -> None:
        self._db = db
        self.samples_per_signature = samples_per_signature
        self.max_signatures = max_signatures
        self.retention = retention_hours * 3600
        self.flush_interval = flush_interval
        self.sample_interval = sample_interval
        self._pending = _Pending()
        self._sample_counts: dict[str, int] = {}
        self._last_sample: dict[str, float] = {}
        self._flusher: asyncio.Task[None] | None = None
        self.signature_count = 0
        self.on_evicted: Callable[[int], None] = lambda n: None
        self._lock = asyncio.Lock()
        self.findings = FindingTables(samples_per_signature)
        self._asked: str | None = None
        self.who = "shadow"

    @classmethod
    async def open(cls, path: str, *, samples_per_signature: int = 5, max_signatures: int = 2000,
                   retention_hours: float = 72.0, flush_interval: float = 0.5,
                   sample_interval: float = 10.0) -> Store:
        # A file that cannot be opened fails here, on this thread: aiosqlite's worker
        # thread would outlive a failed connect and report to a loop that may be closed.
        sqlite3.connect(path).close()
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA secure_delete=ON")  # deleted samples leave no bytes behind
            await db.executescript(SCHEMA)
            await migrate(db)
            await db.commit()
            store = cls(db, samples_per_signature=samples_per_signature,
                        max_signatures=max_signatures, retention_hours=retention_hours,
                        flush_interval=flush_interval, sample_interval=sample_interval)
            async with db.execute("SELECT signature, count(*) FROM samples GROUP BY signature") as cur:
                store._sample_counts = {sig: n async for sig, n in cur}
            async with db.execute("SELECT count(*) FROM signatures") as cur:
                (store.signature_count,) = await cur.fetchone()
            await store.findings.load(db)
        except BaseException:  # e.g. not a database: its thread would keep the process alive
            await db.close()
            raise
        store._flusher = asyncio.get_running_loop().create_task(store._flush_forever(),
                                                                name="shadow-store-flush")
        return store

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        await self._db.close()

    # --- mismatches -----------------------------------------------------------------

    def wants_sample(self, signature: str, now: float | None = None) -> bool:
        """True when a new sample of this signature would be kept (check before building it)."""
        now = time.time() if now is None else now
        held = self._sample_counts.get(signature, 0)
        if held == 0 and len(self._sample_counts) >= self.max_signatures:
            return False
        if held < self.samples_per_signature:
            return True
        return now - self._last_sample.get(signature, 0.0) >= self.sample_interval

    def record(self, *, signatures: list[tuple[str, str, str, str, str]], exchange_id: str,
               method: str, route: str, sample: dict | None, now: float | None = None,
               weight: int = 1) -> None:
        """Count one mismatching exchange (or `weight` occurrences) under each of its
        signatures (signature, method, route, kind, path); keep `sample` (built by shadow.privacy)
        under the first signature that wants one. Never waits."""
        now = time.time() if now is None else now
        hour = int(now // 3600)
        pending = self._pending
        for sig, m, r, kind, path in signatures:
            entry = pending.counts.get(sig)
            if entry is None:
                pending.counts[sig] = [m, r, kind, path, weight, now, now]
            else:
                entry[4] += weight
                entry[6] = now
            pending.hours[(sig, hour)] = pending.hours.get((sig, hour), 0) + weight
        if sample is None:
            return
        pending_samples = self._pending.samples
        if self._asked == exchange_id and pending_samples and pending_samples[-1][1] == exchange_id:
            kept = pending_samples[-1]  # a finding asked first: keep the store's fuller sample
            pending_samples[-1] = (*kept[:5], jsonable.dumps(sample).decode())
            return
        for sig, *_ in signatures:
            if self.wants_sample(sig, now):
                self.add_sample(sig, exchange_id=exchange_id, route=route, method=method,
                                sample=sample, now=now)
                break

    def add_sample(self, signature: str, *, exchange_id: str, route: str, method: str,
                   sample: dict, now: float | None = None, asked: bool = False) -> None:
        """Keep `sample` (already redacted) under `signature`. `asked`: whatever the caps
        say, because a finding asks for it; `record()` then keeps no second sample of the
        same exchange. Never waits."""
        now = time.time() if now is None else now
        self._asked = exchange_id if asked else None
        body = jsonable.dumps(sample).decode()
        self._pending.samples.append((signature, exchange_id, route, method, now, body))
        self._sample_counts[signature] = self._sample_counts.get(signature, 0) + 1
        self._last_sample[signature] = now

    def sampled(self, exchange_id: str) -> bool:
        """True when the last sample waiting to be written is of `exchange_id`."""
        samples = self._pending.samples
        return bool(samples) and samples[-1][1] == exchange_id

    def sample_version(self, exchange_id: str, version: str | None) -> None:
        """The candidate version that served the exchange of a waiting sample."""
        if version is not None:
            self._pending.versions[exchange_id] = version

    async def _flush_forever(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
                if time.time() - last_prune > 60:
                    await self.prune()
                    last_prune = time.time()
            except Exception:  # logged; the next round tries again
                log.exception("state store flush failed")

    async def flush(self) -> None:
        """Write what `record()` folded since the last flush, in one transaction."""
        async with self._lock:
            pending, self._pending = self._pending, _Pending()
            db = self._db
            if not (pending.counts or pending.samples or pending.reads):
                if self.findings.pending:
                    await self.findings.flush(db, {}, self.who)
                    await db.commit()
                return
            await db.executemany("INSERT INTO reads (at, who, what) VALUES (?, ?, ?)",
                                 pending.reads)
            await db.executemany(
                """INSERT INTO signatures VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (signature) DO UPDATE SET count = count + excluded.count,
                   last_seen = excluded.last_seen""",
                [(sig, *entry) for sig, entry in pending.counts.items()])
            await db.executemany(
                """INSERT INTO signature_hours VALUES (?, ?, ?) ON CONFLICT (signature, hour)
                   DO UPDATE SET count = count + excluded.count""",
                [(sig, hour, n) for (sig, hour), n in pending.hours.items()])
            sample_ids: dict[str, int] = {}
            for row in pending.samples:
                cur = await db.execute(
                    "INSERT INTO samples (signature, exchange_id, route, method, created_at, body,"
                    " candidate_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*row, pending.versions.get(row[1])))
                sample_ids[row[1]] = cur.lastrowid or 0
            await self.findings.flush(db, sample_ids, self.who)
            for sig in {s[0] for s in pending.samples}:
                await db.execute(
                    """DELETE FROM samples WHERE signature = ? AND id NOT IN (
                       SELECT id FROM samples WHERE signature = ? ORDER BY id DESC LIMIT ?)
                       AND id NOT IN (SELECT sample_id FROM sample_findings)""",
                    (sig, sig, self.samples_per_signature))
            evicted = await self._evict() if pending.counts else []
            await db.commit()
        if evicted:
            for sig in evicted:
                self._sample_counts.pop(sig, None)
                self._last_sample.pop(sig, None)
            self.on_evicted(len(evicted))

    async def _evict(self, now: float | None = None) -> list[str]:
        """Delete the signatures past `max_signatures` (with their samples and hourly
        counts): the least frequent, weighted by how long ago they were last seen
        (count / (1 + hours since last seen)), the oldest first among equals."""
        async with self._db.execute("SELECT count(*) FROM signatures") as cur:
            (total,) = await cur.fetchone()
        self.signature_count = total
        excess = total - self.max_signatures
        if excess <= 0:
            return []
        now = time.time() if now is None else now
        async with self._db.execute(
                """SELECT signature FROM signatures
                   ORDER BY count / (1.0 + max(0.0, ? - last_seen) / 3600.0), last_seen
                   LIMIT ?""", (now, excess)) as cur:
            victims = [row[0] async for row in cur]
        for table in ("samples", "signature_hours", "signatures"):
            await self._db.executemany(f"DELETE FROM {table} WHERE signature = ?",
                                       [(sig,) for sig in victims])
        self.signature_count = total - len(victims)
        return victims

    async def prune(self, now: float | None = None) -> int:
        """Delete samples and hourly counts older than the retention period."""
        cutoff = (time.time() if now is None else now) - self.retention
        async with self._lock:
            cur = await self._db.execute("DELETE FROM samples WHERE created_at < ?", (cutoff,))
            await self._db.execute("DELETE FROM signature_hours WHERE hour < ?",
                                   (int(cutoff // 3600),))
            await self.findings.after_prune(self._db, cutoff)
            await self._db.commit()
            async with self._db.execute(
                    "SELECT signature, count(*) FROM samples GROUP BY signature") as rows:
                self._sample_counts = {sig: n async for sig, n in rows}
            return cur.rowcount

    async def signatures(self, *, route: str | None = None, kind: str | None = None,
                         limit: int = 200, not_kind: str | None = None) -> list[dict]:
        """Signatures, most frequent first, with their hourly trend (last 24 hours);
        `not_kind` leaves one kind out."""
        query = "SELECT * FROM signatures WHERE (? IS NULL OR route = ?) AND (? IS NULL OR kind = ?)" \
                " AND (? IS NULL OR kind <> ?) ORDER BY count DESC, signature LIMIT ?"
        out = await self._rows(query, (route, route, kind, kind, not_kind, not_kind, limit))
        now_hour = int(time.time() // 3600)
        for row in out:
            hours = await self._rows(
                "SELECT hour, count FROM signature_hours WHERE signature = ? AND hour > ?",
                (row["signature"], now_hour - 24))
            by_hour = {h["hour"]: h["count"] for h in hours}
            row["trend"] = [by_hour.get(now_hour - 23 + i, 0) for i in range(24)]
            row["samples"] = self._sample_counts.get(row["signature"], 0)
        return out

    async def samples(self, *, signature: str | None = None, route: str | None = None,
                      limit: int = 50) -> list[dict]:
        """Samples, newest first, each with its decoded body."""
        rows = await self._rows(
            "SELECT * FROM samples WHERE (? IS NULL OR signature = ?) AND (? IS NULL OR route = ?)"
            " ORDER BY id DESC LIMIT ?", (signature, signature, route, route, limit))
        for row in rows:
            row["sample"] = orjson.loads(row.pop("body"))
        return rows

    async def sample(self, sample_id: int) -> dict | None:
        rows = await self._rows("SELECT * FROM samples WHERE id = ?", (sample_id,))
        if not rows:
            return None
        rows[0]["sample"] = orjson.loads(rows[0].pop("body"))
        return rows[0]

    async def compact(self) -> None:
        """Zeroed pages out of the file: VACUUM, then the WAL truncated; sample counts are
        read again (after a purge, shadow.privacy.purge)."""
        async with self._lock:
            db = self._db
            await db.execute("VACUUM")
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            async with db.execute("SELECT signature, count(*) FROM samples GROUP BY signature") as rows:
                self._sample_counts = {sig: n async for sig, n in rows}

    def add_read(self, who: str, what: str, now: float | None = None) -> None:
        """Record that `who` read `what` (a sample, a list of samples). Never waits."""
        self._pending.reads.append((time.time() if now is None else now, who, what))

    async def reads(self, limit: int = 100) -> list[dict]:
        """The read log, newest first."""
        await self.flush()
        return await self._rows("SELECT * FROM reads ORDER BY id DESC LIMIT ?", (limit,))

    # --- meta and audit -------------------------------------------------------------------

    async def get_meta(self, key: str, default: Any = None) -> Any:
        rows = await self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return orjson.loads(rows[0]["value"]) if rows else default

    async def set_meta(self, key: str, value: Any) -> None:
        async with self._lock:
            await self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, jsonable.dumps(value).decode()))
            await self._db.commit()

    async def add_audit(self, *, action: str, from_mode: str | None, to_mode: str | None,
                        forced: bool, reason: str, who: str, gate: Any, subject: str = "") -> int:
        """One audit entry. Mode changes fill from/to with modes; a finding's state change
        fills them with states and names the finding in `subject`."""
        async with self._lock:
            cur = await self._db.execute(
                "INSERT INTO audit (at, action, from_mode, to_mode, forced, reason, who, gate,"
                " subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), action, from_mode, to_mode, int(forced), reason, who,
                 jsonable.dumps(gate).decode(), subject))
            await self._db.commit()
            return cur.lastrowid or 0

    async def audit(self, limit: int = 100) -> list[dict]:
        rows = await self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        for row in rows:
            row["forced"] = bool(row["forced"])
            row["gate"] = orjson.loads(row["gate"])
        return rows

    async def rows(self, query: str, params: tuple = ()) -> list[dict]:
        """Rows of a read-only query as dicts (for the read side of other modules)."""
        return await self._rows(query, params)

    async def write(self, statements: list[tuple[str, tuple]]) -> list[int]:
        """Run statements in one transaction (for the write side of other modules);
        returns how many rows each changed."""
        async with self._lock:
            counts = []
            for query, params in statements:
                cur = await self._db.execute(query, params)
                counts.append(cur.rowcount)
            await self._db.commit()
            return counts

    async def _rows(self, query: str, params: tuple) -> list[dict]:
        async with self._db.execute(query, params) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) async for row in cur]
