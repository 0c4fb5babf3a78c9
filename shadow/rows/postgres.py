"""Change capture on a PostgreSQL database (the only module that uses asyncpg).

Two methods: logical decoding (see `postgres_decoding`: a replication slot, nothing in
the app's schema, no cost in its transactions) where the server and the installing role
allow it, else triggers (see `postgres_schema`). `install()` picks one (or the one asked
for), says why in `reason`, and removes the other; a capture opened later finds which
one is installed (the slot exists or not). The rest of this docstring is about triggers.

`install()` runs in one transaction, so a failure leaves nothing behind. The trigger
writes the log row in the application's transaction: a rolled-back write logs nothing.
It logs only the table, the operation, the key column names and the row images; `drain()`
reads the key out of the images, and turns an update that changed the key into a delete
of the old key and an insert of the new one, so that every change names exactly one row.
Values come back as `row_to_json` renders them: numbers as Decimal (exact), timestamps as
ISO text, json/jsonb columns as parsed structures; bytea is turned back into bytes.
`seq` orders changes by the time they were written, which is write order as long as
writes run one at a time (strict mode).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import asyncpg

from shadow.compare.bridge import kind_of_postgres
from shadow.rows import postgres_decoding as decoding
from shadow.rows import postgres_schema as ddl
from shadow.rows.capture import (LOG_TABLE, Capture, CaptureError, CaptureStatus, load_json,
                                 quote_ident)
from shadow.rows.model import RowRules, TableInfo
from shadow.verdict import RowChange

log = logging.getLogger("shadow.rows")
METHODS = ("auto", "decoding", "triggers")


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """Translate asyncpg and socket errors into CaptureError (the one place it happens)."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise CaptureError(f"postgres {action}: {exc}") from exc


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of decoded JSON values as jsonb defines it: numbers by value (1 = 1.0),
    but values of different JSON types never equal (true is not 1)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (bool, list, dict)) or isinstance(b, (bool, list, dict)):
        return type(a) is type(b) and a == b
    return a == b


class PostgresCapture(Capture):
    """Change capture on the database at `dsn`, tables of `schema`, one connection.
    `method` is what `install()` uses: "auto" (decoding where possible, else triggers),
    "decoding" (or fail saying why) or "triggers"."""

    def __init__(self, dsn: str, *, schema: str = "public", rules: RowRules | None = None,
                 connect_timeout: float = 10.0, method: str = "auto") -> None:
        super().__init__(rules=rules)
        if method not in METHODS:
            raise ValueError(f"capture method must be one of {', '.join(METHODS)}: {method!r}")
        self.method = method
        #: Why install chose its method; the installed method once known.
        self.reason = ""
        self.installed: str | None = None
        self.lost = 0
        self._slot = ""
        self.dsn = dsn
        self.schema = schema
        self.connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._drain = ddl.drain_sql(schema)

    async def open(self) -> None:
        if self._conn is None:
            with _mapped("connect"):
                self._conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
                database = await self._conn.fetchval("SELECT current_database()")
                self._slot = decoding.slot_name(database)
                has_slot = await self._conn.fetchrow(decoding.SLOT_STATE, self._slot)
                self.installed = "decoding" if has_slot else "triggers"

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise CaptureError("postgres capture is not open")
        return self._conn

    async def now(self) -> float:
        """The database's clock, in seconds since the epoch (`clock_timestamp()`)."""
        async with self._lock:
            with _mapped("clock"):
                return float(await self.conn.fetchval(
                    "SELECT extract(epoch FROM clock_timestamp())::float8"))

    async def sequence_position(self, table: str, column: str) -> int | None:
        """The last value of the key's sequence (serial or identity), burnt ones included
        (`ON CONFLICT DO NOTHING` and a rolled-back insert take one); a key with no
        sequence: its highest value."""
        qualified = f"{quote_ident(self.schema)}.{quote_ident(table)}"
        async with self._lock:
            with _mapped("sequence"):
                sequence = await self.conn.fetchval(
                    "SELECT pg_get_serial_sequence($1, $2)", qualified, column)
                if sequence is None:
                    value = await self.conn.fetchval(
                        f"SELECT max({quote_ident(column)}) FROM {qualified}")
                    return value if isinstance(value, int) else None
                # `sequence` is the server's own quoted name of it
                row = await self.conn.fetchrow(f"SELECT last_value, is_called FROM {sequence}")
                if row["is_called"]:
                    return int(row["last_value"])
                step = await self.conn.fetchval(  # never used: the value before its first
                    "SELECT seqincrement FROM pg_sequence WHERE seqrelid = $1::regclass", sequence)
                return int(row["last_value"] - (step or 1))

    async def introspect(self) -> dict[str, TableInfo]:
        async with self._lock:
            with _mapped("introspect"):
                tables = await ddl.read_tables(self.conn.fetch, self.schema, kind_of_postgres)
        return self._catalogue(tables)

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        """Install with the chosen method (decoding captures every table the rules cover,
        whatever `tables` says). Raises CaptureError when "decoding" was asked for and
        cannot be had, saying why."""
        infos = await self.introspect()
        selected = self._selected(infos, tables)
        method, self.reason = await self._choose()
        if method == "decoding":
            await self._remove_triggers()
            async with self._lock:
                with _mapped("install"):
                    if await self.conn.fetchrow(decoding.SLOT_STATE, self._slot) is None:
                        await self.conn.fetchval(decoding.CREATE_SLOT, self._slot, decoding.PLUGIN)
            self.installed = "decoding"
            return await self.status()
        await self._drop_slot()
        self.installed = "triggers"
        async with self._lock:
            with _mapped("install"):
                async with self.conn.transaction():
                    for sql in ddl.log_ddl(self.schema):
                        await self.conn.execute(sql)
                    for table in await self._triggered():
                        for sql in ddl.drop_trigger(self.schema, table):
                            await self.conn.execute(sql)
                    for name in selected:
                        if infos[name].verifiable:
                            for sql in ddl.trigger_ddl(self.schema, infos[name]):
                                await self.conn.execute(sql)
        return await self.status()

    async def _choose(self) -> tuple[str, str]:
        """(method, why) for install."""
        if self.method == "triggers":
            return "triggers", "triggers, as configured (rows.postgres_capture)"
        async with self._lock:
            with _mapped("install"):
                wal_level, keep, replication, free = await self.conn.fetchrow(decoding.ABLE)
        if self._slot and await self._has_slot():
            free += 1
        why = decoding.unable(wal_level, keep, replication, free)
        if not why:
            return "decoding", (f"logical decoding (slot {self._slot}, {decoding.PLUGIN}); the WAL "
                                f"it keeps is bounded by max_slot_wal_keep_size = {keep}")
        if self.method == "decoding":
            raise CaptureError(f"postgres install: logical decoding unavailable: {why}")
        return "triggers", f"triggers (SECURITY DEFINER): logical decoding unavailable: {why}"

    async def _has_slot(self) -> bool:
        async with self._lock:
            with _mapped("slot"):
                return await self.conn.fetchrow(decoding.SLOT_STATE, self._slot) is not None

    async def _drop_slot(self) -> None:
        async with self._lock:
            with _mapped("uninstall"):
                await self.conn.execute(decoding.DROP_SLOT, self._slot)

    async def uninstall(self) -> None:
        await self._drop_slot()
        await self._remove_triggers()
        self.installed = None

    async def _remove_triggers(self) -> None:
        async with self._lock:
            with _mapped("uninstall"):
                async with self.conn.transaction():
                    for table in await self._triggered():
                        for sql in ddl.drop_trigger(self.schema, table):
                            await self.conn.execute(sql)
                    for sql in ddl.drop_log(self.schema):
                        await self.conn.execute(sql)

    async def status(self) -> CaptureStatus:
        infos = await self.introspect()
        if self.installed == "decoding" or await self._has_slot():
            return await self._slot_status(infos)
        async with self._lock:
            with _mapped("status"):
                comments = dict(await self.conn.fetch(ddl.OUR_TRIGGERS, self.schema,
                                                      ddl.TRIGGER, ddl.FUNCTION))
                has_log = await self.conn.fetchval(ddl.HAS_LOG, self.schema, LOG_TABLE)
                pending = await self.conn.fetchval(ddl.count_sql(self.schema)) if has_log else None
        captured, uncaptured, stale, excluded = [], [], [], []
        for name, info in infos.items():
            if not info.verifiable:
                continue
            if name in comments:
                current = comments[name] == ddl.COMMENT_PREFIX + info.signature()
                (captured if current else stale).append(name)
            elif self.rules.covers(name):
                uncaptured.append(name)
            else:
                excluded.append(name)
        return CaptureStatus(
            log_table=bool(has_log),
            captured=tuple(captured),
            uncaptured=tuple(uncaptured),
            stale=tuple(stale),
            unverifiable={n: i.reason for n, i in infos.items() if not i.verifiable},
            excluded=tuple(excluded),
            pending=pending,
        )

    async def _slot_status(self, infos: dict[str, TableInfo]) -> CaptureStatus:
        """The slot's state: every covered table is captured; the WAL it keeps is said."""
        async with self._lock:
            with _mapped("status"):
                state = await self.conn.fetchrow(decoding.SLOT_STATE, self._slot)
                keep = await self.conn.fetchval("SHOW max_slot_wal_keep_size")
        faults, detail = (), ""
        if state is not None:
            detail = (f"logical decoding, slot {self._slot}: keeps {state['retained'] or 0} bytes "
                      f"of WAL (bound: max_slot_wal_keep_size = {keep}), wal_status "
                      f"{state['wal_status']}")
            if state["wal_status"] == "lost":
                faults = ("the slot lost WAL it needed (the proxy was away too long): changes "
                          "were lost; the running proxy re-creates it",)
        verifiable = [n for n, i in infos.items() if i.verifiable]
        return CaptureStatus(
            log_table=state is not None,
            captured=tuple(n for n in verifiable if self.rules.covers(n)) if state else (),
            uncaptured=(),
            unverifiable={n: i.reason for n, i in infos.items() if not i.verifiable},
            excluded=tuple(n for n in verifiable if not self.rules.covers(n)),
            method="decoding", detail=detail, faults=faults)

    async def drain(self) -> list[RowChange]:
        if self.installed == "decoding":
            return await self._drain_slot()
        async with self._lock:
            with _mapped("drain"):
                rows = await self.conn.fetch(self._drain)
        if not rows:
            return []
        rows = sorted(rows, key=lambda row: row[0])
        if any(row[1] not in self._tables for row in rows):
            await self.introspect()
        changes = []
        for _seq, tbl, op, key_columns, before, after, at in rows:
            info = self._tables.get(tbl)
            if key_columns is not None:
                names = load_json(key_columns)
            else:
                names = info.key if info else ()
            changes += self._changes(info, tbl, op, names,
                                     load_json(before, parse_float=Decimal),
                                     load_json(after, parse_float=Decimal), at)
        return changes

    async def _drain_slot(self) -> list[RowChange]:
        """Every change decoded since the last drain, in commit order. A slot that lost
        WAL (or vanished) is re-created and the gap counted and logged."""
        async with self._lock:
            try:
                lines = [row[0] for row in await self.conn.fetch(decoding.GET_CHANGES, self._slot)]
            except asyncpg.PostgresError as exc:
                with _mapped("drain"):
                    state = await self.conn.fetchrow(decoding.SLOT_STATE, self._slot)
                    if state is not None and state["wal_status"] != "lost":
                        raise
                    await self.conn.execute(decoding.DROP_SLOT, self._slot)
                    await self.conn.fetchval(decoding.CREATE_SLOT, self._slot, decoding.PLUGIN)
                self.lost += 1
                log.warning("replication slot re-created: changes were lost",
                            extra={"slot": self._slot, "error": str(exc)})
                return []
        with _mapped("drain"):
            decoded = decoding.parse_changes(lines)
        if any(d.table not in self._tables for d in decoded):
            await self.introspect()
        for change in decoded:
            if change.unchanged and change.new is not None:
                await self._fill_unchanged(change)
        return decoding.to_changes(decoded, self.schema, self._tables, self.rules.covers)

    async def _fill_unchanged(self, change: decoding.Decoded) -> None:
        """Columns an UPDATE left unchanged and stored out of line (TOAST) are not in the
        decoded row: read them from the table, as they are at the drain."""
        info = self._tables.get(change.table)
        if info is None:
            return
        table = f"{ddl.quote_ident(self.schema)}.{ddl.quote_ident(change.table)}"
        match = " AND ".join(f"t.{ddl.quote_ident(k)} = ${i}" for i, k in enumerate(info.key, 1))
        async with self._lock:
            with _mapped("drain"):
                row = await self.conn.fetchval(f"SELECT row_to_json(t)::text FROM {table} t "
                                               f"WHERE {match}",
                                               *decoding.key_of(info.key, change.new))
        image = self._image(info, load_json(row, parse_float=Decimal)) or {}
        for name in change.unchanged:
            change.new[name] = image.get(name)
        change.new = {c.name: change.new[c.name] for c in info.columns if c.name in change.new}

    def _changes(self, info: TableInfo | None, tbl: str, op: str, names: Sequence[str],
                 before: Any, after: Any, at: float | None) -> list[RowChange]:
        """The changes one log row stands for, keyed by the values of the `names` columns
        (null where an image lacks one): one, or a delete and an insert for an update that
        changed the key."""
        old_key = [before.get(name) for name in names] if isinstance(before, dict) else []
        new_key = [after.get(name) for name in names] if isinstance(after, dict) else []
        if op == "update" and not _json_equal(old_key, new_key):
            return [self._change(info, tbl, "delete", old_key, before, None, at),
                    self._change(info, tbl, "insert", new_key, None, after, at)]
        return [self._change(info, tbl, op, old_key if after is None else new_key,
                             before, after, at)]

    def _image(self, info: TableInfo | None, image: Any) -> dict[str, Any] | None:
        """The image in column order, bytea values (`\\x<hex>` text) turned into bytes."""
        if image is None or info is None:
            return image
        ordered = {}
        for column in info.columns:
            if column.name not in image:
                continue
            value = image.pop(column.name)
            if column.declared == "bytea" and isinstance(value, str) and value.startswith("\\x"):
                value = bytes.fromhex(value[2:])
            ordered[column.name] = value
        ordered.update(image)
        return ordered

    async def _triggered(self) -> list[str]:
        """Tables of the schema that carry our trigger (call with the lock held)."""
        tables = []
        for name in (ddl.TRIGGER, ddl.TRUNCATE_TRIGGER):
            rows = await self.conn.fetch(ddl.OUR_TRIGGERS, self.schema, name, ddl.FUNCTION)
            tables += [row[0] for row in rows]
        return list(dict.fromkeys(tables))
