"""PostgreSQL catalogue reading and capture DDL, without a connection of its own.

One plpgsql function, `_shadow_capture()`, serves every table. What it adds to the
application's write is kept to one INSERT of the table name, the operation, the key
column names and the `row_to_json` images of OLD and NEW: the table name and key column
names are constants passed as trigger arguments at install, and nothing is looked up,
looped over or compared per row. The function is `SECURITY DEFINER`, owned by the role
that installed it, with a fixed `search_path`: it writes the log with the installer's
rights, so any role that may write a captured table (a DML-only app role included) can
keep writing it without any grant on the log. A statement-level `AFTER TRUNCATE`
trigger logs a TRUNCATE as one row with no images: the table lost every row, which rows
is not known. The key values are read out of the images when the log
is drained, and an update that changed the key is split there into a delete and an
insert (see PostgresCapture.drain). The log has no index: `drain()` reads all of it and
orders it by `seq`, an identity assigned in write order. Each trigger carries a comment
with the table's signature at install, so `status()` can tell a table whose columns
changed since.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shadow.compare.bridge import ValueKind
from shadow.rows.capture import LOG_TABLE, PREFIX, quote_ident, quote_literal
from shadow.rows.model import Column, TableInfo
from shadow.rows.naming import with_named_references

Fetch = Callable[..., Awaitable[Sequence[Any]]]

FUNCTION = f"{PREFIX}capture"
TRIGGER = f"{PREFIX}capture"
TRUNCATE_TRIGGER = f"{PREFIX}truncate"
#: Starts each trigger's comment. It names the layout of the log rows the trigger writes,
#: so that triggers left by an install with another layout show as stale.
COMMENT_PREFIX = "shadow capture, log layout 4: "

_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname <> $2
ORDER BY c.relname
"""
_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), ic.data_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN information_schema.columns ic
  ON ic.table_schema = n.nspname AND ic.table_name = c.relname AND ic.column_name = a.attname
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""
_KEYS = """
SELECT c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND i.indisprimary
ORDER BY c.relname, k.ord
"""
_FOREIGN = """
SELECT c.relname, a.attname, p.relname, pa.attname
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.confrelid AND p.relnamespace = c.relnamespace
JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
WHERE k.contype = 'f' AND n.nspname = $1 AND cardinality(k.conkey) = 1
"""
OUR_TRIGGERS = """
SELECT c.relname, obj_description(t.oid, 'pg_trigger')
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE n.nspname = $1 AND t.tgname = $2 AND p.proname = $3 AND NOT t.tgisinternal
  AND NOT c.relispartition
ORDER BY c.relname
"""
HAS_LOG = "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL"


async def read_tables(fetch: Fetch, schema: str,
                      kind_of: Callable[[str], ValueKind]) -> dict[str, TableInfo]:
    """Every ordinary or partitioned table of `schema` but the change log, by name.
    Tables without a primary key are listed as unverifiable."""
    names = [row[0] for row in await fetch(_TABLES, schema, LOG_TABLE)]
    columns: dict[str, list[Column]] = {name: [] for name in names}
    for table, col, declared, data_type in await fetch(_COLUMNS, schema):
        if table in columns:
            columns[table].append(Column(col, declared, kind_of(data_type or declared)))
    keys: dict[str, list[str]] = {name: [] for name in names}
    for table, col in await fetch(_KEYS, schema):
        if table in keys:
            keys[table].append(col)
    refs: dict[str, dict[str, str]] = {name: {} for name in names}
    for table, col, parent, parent_col in await fetch(_FOREIGN, schema):
        if table in refs and keys.get(parent) == [parent_col]:
            refs[table][col] = parent
    tables = {}
    for name in names:
        reason = "" if keys[name] else "no primary key"
        tables[name] = TableInfo(name, tuple(keys[name]), tuple(columns[name]),
                                 not reason, reason, refs[name])
    return with_named_references(tables)


def log_ddl(schema: str) -> list[str]:
    """The change log and the trigger function, created if missing.

    No index on the log: nothing reads it but `drain()`, which takes every row. Images are
    `json` (text kept as written), which is cheaper to build than `jsonb` and accepts
    every value a json column can hold (jsonb refuses `\\u0000`). REPLICA IDENTITY FULL
    keeps the drain's DELETE allowed should the log fall under a publication of all
    tables. The ALTER brings a log made by an earlier version (a `pk` column of key
    values, jsonb images) to this layout."""
    log = f"{quote_ident(schema)}.{quote_ident(LOG_TABLE)}"
    function = f"{quote_ident(schema)}.{quote_ident(FUNCTION)}"
    body = f"""
BEGIN
  INSERT INTO {log} (tbl, op, key_columns, before, after, at)
  VALUES (TG_ARGV[0], lower(TG_OP), TG_ARGV[1], row_to_json(OLD), row_to_json(NEW),
          extract(epoch FROM clock_timestamp()));
  RETURN NULL;
END
"""
    return [
        f"CREATE TABLE IF NOT EXISTS {log} (seq bigint GENERATED ALWAYS AS IDENTITY, "
        "tbl text NOT NULL, op text NOT NULL, key_columns text, before json, after json, "
        "at double precision)",
        f"ALTER TABLE {log} ADD COLUMN IF NOT EXISTS key_columns text, "
        "ADD COLUMN IF NOT EXISTS at double precision, "
        "DROP COLUMN IF EXISTS pk, ALTER COLUMN before TYPE json, "
        "ALTER COLUMN after TYPE json, REPLICA IDENTITY FULL",
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
        f"SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $shadow${body}$shadow$",
    ]


def trigger_ddl(schema: str, info: TableInfo) -> list[str]:
    """The row trigger with its signature comment, and the TRUNCATE trigger, of one
    verifiable table. The arguments are the table name and its key column names as a
    JSON array."""
    table = f"{quote_ident(schema)}.{quote_ident(info.name)}"
    args = ", ".join(quote_literal(a) for a in (info.name, json.dumps(list(info.key))))
    function = f"{quote_ident(schema)}.{quote_ident(FUNCTION)}({args})"
    return [
        f"CREATE TRIGGER {quote_ident(TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}",
        f"COMMENT ON TRIGGER {quote_ident(TRIGGER)} ON {table} "
        f"IS {quote_literal(COMMENT_PREFIX + info.signature())}",
        f"CREATE TRIGGER {quote_ident(TRUNCATE_TRIGGER)} AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}",
    ]


def drop_trigger(schema: str, table: str) -> list[str]:
    target = f"{quote_ident(schema)}.{quote_ident(table)}"
    return [f"DROP TRIGGER IF EXISTS {quote_ident(name)} ON {target}"
            for name in (TRIGGER, TRUNCATE_TRIGGER)]


def drop_log(schema: str) -> list[str]:
    """Drop the function and the change log (triggers must be gone first)."""
    return [
        f"DROP FUNCTION IF EXISTS {quote_ident(schema)}.{quote_ident(FUNCTION)}()",
        f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(LOG_TABLE)}",
    ]


def drain_sql(schema: str) -> str:
    log = f"{quote_ident(schema)}.{quote_ident(LOG_TABLE)}"
    return (f"DELETE FROM {log} "
            "RETURNING seq, tbl, op, key_columns, before::text, after::text, at")


def count_sql(schema: str) -> str:
    return f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(LOG_TABLE)}"
