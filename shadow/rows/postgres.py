"""Change capture on a PostgreSQL database (the only module that uses asyncpg).

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import asyncpg

from shadow.compare.bridge import kind_of_postgres
from shadow.rows import postgres_schema as ddl
from shadow.rows.capture import LOG_TABLE, Capture, CaptureError, CaptureStatus, load_json
from shadow.rows.model import RowRules, TableInfo
from shadow.verdict import RowChange


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
    """Change capture on the database at `dsn`, tables of `schema`, one connection."""

    def __init__(self, dsn: str, *, schema: str = "public", rules: RowRules | None = None,
                 connect_timeout: float = 10.0) -> None:
        super().__init__(rules=rules)
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

    async def introspect(self) -> dict[str, TableInfo]:
        async with self._lock:
            with _mapped("introspect"):
                tables = await ddl.read_tables(self.conn.fetch, self.schema, kind_of_postgres)
        self._tables = tables
        return tables

    async def install(self, tables: Iterable[str] | None = None) -> CaptureStatus:
        infos = await self.introspect()
        selected = self._selected(infos, tables)
        async with self._lock:
            with _mapped("install"):
                async with self.conn.transaction():
                    for sql in ddl.log_ddl(self.schema):
                        await self.conn.execute(sql)
                    for table in await self._triggered():
                        await self.conn.execute(ddl.drop_trigger(self.schema, table))
                    for name in selected:
                        if infos[name].verifiable:
                            for sql in ddl.trigger_ddl(self.schema, infos[name]):
                                await self.conn.execute(sql)
        return await self.status()

    async def uninstall(self) -> None:
        async with self._lock:
            with _mapped("uninstall"):
                async with self.conn.transaction():
                    for table in await self._triggered():
                        await self.conn.execute(ddl.drop_trigger(self.schema, table))
                    for sql in ddl.drop_log(self.schema):
                        await self.conn.execute(sql)

    async def status(self) -> CaptureStatus:
        infos = await self.introspect()
        async with self._lock:
            with _mapped("status"):
                comments = dict(await self.conn.fetch(ddl.OUR_TRIGGERS, self.schema, ddl.TRIGGER))
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

    async def drain(self) -> list[RowChange]:
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
        rows = await self.conn.fetch(ddl.OUR_TRIGGERS, self.schema, ddl.TRIGGER)
        return [row[0] for row in rows]
