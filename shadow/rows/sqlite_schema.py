"""SQLite catalogue reading and trigger text, without a connection of its own.

`read_tables` asks the catalogue through a `rows(sql, params)` coroutine supplied by the
caller; `trigger_sql` builds the three CREATE TRIGGER statements of one table. The text is
deterministic, and SQLite keeps it verbatim in `sqlite_master.sql`, so comparing the
stored text with freshly built text tells whether a trigger still fits its table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shadow.compare.bridge import ValueKind
from shadow.rows.capture import LOG_TABLE, PREFIX, quote_ident, quote_literal
from shadow.rows.model import Column, TableInfo

Rows = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

#: Columns per json_object() call: two arguments each, under SQLite's default limit of 127.
CHUNK = 60
ROWID_ALIASES = ("rowid", "_rowid_", "oid")
_MAX_REAL = "1.7976931348623157e308"

LOG = quote_ident(LOG_TABLE)
CREATE_LOG = (
    f"CREATE TABLE IF NOT EXISTS {LOG} (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, "
    "op TEXT NOT NULL, pk TEXT NOT NULL, before TEXT, after TEXT, at REAL)"
)
#: A log made before changes were timed gains the column (NULL for the rows it holds).
LOG_COLUMNS = f"SELECT name FROM pragma_table_info({quote_literal(LOG_TABLE)})"
ADD_AT = f"ALTER TABLE {LOG} ADD COLUMN at REAL"
#: The moment of the change in seconds since the epoch (SQLite's clock: milliseconds).
NOW = "(julianday('now') - 2440587.5) * 86400.0"
OUR_TRIGGERS = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
    f"AND name LIKE '{PREFIX.replace('_', '!_')}%' ESCAPE '!' "
    f"AND instr(sql, {quote_literal(LOG)}) > 0 ORDER BY name"
)
HAS_LOG = f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {quote_literal(LOG_TABLE)}"
COUNT_LOG = f"SELECT count(*) FROM {LOG}"
DRAIN = f"DELETE FROM {LOG} RETURNING seq, tbl, op, pk, before, after, at"

_LIST_TABLES = (
    "SELECT name, type FROM pragma_table_list WHERE schema = 'main' "
    "AND type IN ('table', 'virtual')"
)
_LIST_TABLES_OLD = (
    "SELECT name, CASE WHEN sql LIKE 'CREATE VIRTUAL TABLE%' THEN 'virtual' ELSE 'table' END "
    "FROM sqlite_master WHERE type = 'table'"
)
_COLUMNS = "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid"
_FOREIGN = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq'


async def read_tables(rows: Rows, kind_of: Callable[[str], ValueKind]) -> dict[str, TableInfo]:
    """Every application table of the main schema, by name, sorted by name: SQLite's own
    tables, FTS shadow tables and the change log are left out. Virtual tables are listed
    as unverifiable (SQLite cannot put triggers on them)."""
    try:
        listed = await rows(_LIST_TABLES, ())
    except sqlite3.OperationalError:
        listed = await rows(_LIST_TABLES_OLD, ())
    tables: dict[str, TableInfo] = {}
    foreign: dict[str, list[tuple[str, str, str | None]]] = {}
    for name, kind in sorted(listed):
        if name.startswith("sqlite_") or name == LOG_TABLE:
            continue
        columns, key = [], []
        for col, declared, pk, hidden in await rows(_COLUMNS, (name,)):
            if hidden == 1:
                continue
            columns.append(Column(col, declared or "", kind_of(declared or "")))
            if pk:
                key.append((pk, col))
        key_names = tuple(col for _pk, col in sorted(key))
        reason = ""
        if kind == "virtual":
            reason = "virtual table: SQLite cannot put triggers on it"
        elif not key_names:
            taken = {c.name.casefold() for c in columns}
            alias = next((a for a in ROWID_ALIASES if a not in taken), None)
            key_names = (alias,) if alias else ()
            reason = "" if alias else "no primary key and every rowid alias is a column name"
        tables[name] = TableInfo(name, key_names, tuple(columns), not reason, reason)
        foreign[name] = _single_column(await rows(_FOREIGN, (name,)))
    return {name: _with_references(info, foreign[name], tables) for name, info in tables.items()}


def _single_column(fks: list[Any]) -> list[tuple[str, str, str | None]]:
    """(column, parent table, parent column or None) of every one-column foreign key."""
    by_id: dict[int, list[Any]] = {}
    for fk_id, parent, col, parent_col in fks:
        by_id.setdefault(fk_id, []).append((col, parent, parent_col))
    return [parts[0] for parts in by_id.values() if len(parts) == 1]


def _with_references(info: TableInfo, fks: list[tuple[str, str, str | None]],
                     tables: dict[str, TableInfo]) -> TableInfo:
    """`info` with the foreign keys that point at a parent's whole single-column key."""
    lowered = {name.casefold(): parent for name, parent in tables.items()}
    refs = {}
    for col, parent_name, parent_col in fks:
        parent = lowered.get(parent_name.casefold())
        if parent is None or len(parent.key) != 1:
            continue
        if parent_col is None or parent_col.casefold() == parent.key[0].casefold():
            refs[col] = parent.name
    if not refs:
        return info
    return TableInfo(info.name, info.key, info.columns, info.verifiable, info.reason, refs)


def trigger_names(table: str) -> dict[str, str]:
    """The names of the insert, update and delete triggers of `table`."""
    return {op: f"{PREFIX}{op[0]}_{table}" for op in ("insert", "update", "delete")}


def _value(ref: str, column: str) -> str:
    """One column of OLD/NEW as a JSON-able value. A BLOB becomes {"$blob": hex}; a
    finite REAL is written with 17 significant digits, because SQLite's JSON keeps only
    15 and two different doubles would then look equal."""
    col = f"{ref}.{quote_ident(column)}"
    return (
        f"CASE typeof({col}) WHEN 'blob' THEN json_object('$blob', hex({col})) "
        f"WHEN 'real' THEN CASE WHEN abs({col}) <= {_MAX_REAL} "
        f"THEN json(printf('%!.17g', {col})) ELSE {col} END ELSE {col} END"
    )


def _image(ref: str, columns: Sequence[str]) -> str:
    """The JSON image of OLD/NEW: one json_object, or an array of them for wide tables."""
    parts = []
    for start in range(0, len(columns), CHUNK):
        chunk = columns[start:start + CHUNK]
        pairs = ", ".join(f"{quote_literal(c)}, {_value(ref, c)}" for c in chunk)
        parts.append(f"json_object({pairs})")
    return parts[0] if len(parts) == 1 else f"json_array({', '.join(parts)})"


def _key(ref: str, key: Sequence[str]) -> str:
    return f"json_array({', '.join(_value(ref, k) for k in key)})"


def trigger_sql(info: TableInfo) -> dict[str, str]:
    """CREATE TRIGGER statements by trigger name for a verifiable table. An update that
    changes the key is logged as a delete of the old key plus an insert of the new one."""
    names = trigger_names(info.name)
    table, tbl = quote_ident(info.name), quote_literal(info.name)
    cols = info.column_names
    insert = f"INSERT INTO {LOG} (tbl, op, pk, before, after, at)"
    same = " AND ".join(f"OLD.{quote_ident(k)} IS NEW.{quote_ident(k)}" for k in info.key)
    old, new = _image("OLD", cols), _image("NEW", cols)
    old_key, new_key = _key("OLD", info.key), _key("NEW", info.key)
    return {
        names["insert"]: (
            f"CREATE TRIGGER {quote_ident(names['insert'])} AFTER INSERT ON {table} BEGIN "
            f"{insert} VALUES ({tbl}, 'insert', {new_key}, NULL, {new}, {NOW}); END"
        ),
        names["update"]: (
            f"CREATE TRIGGER {quote_ident(names['update'])} AFTER UPDATE ON {table} BEGIN "
            f"{insert} SELECT {tbl}, 'update', {new_key}, {old}, {new}, {NOW} WHERE {same}; "
            f"{insert} SELECT {tbl}, 'delete', {old_key}, {old}, NULL, {NOW} WHERE NOT ({same}); "
            f"{insert} SELECT {tbl}, 'insert', {new_key}, NULL, {new}, {NOW} WHERE NOT ({same}); END"
        ),
        names["delete"]: (
            f"CREATE TRIGGER {quote_ident(names['delete'])} AFTER DELETE ON {table} BEGIN "
            f"{insert} VALUES ({tbl}, 'delete', {old_key}, {old}, NULL, {NOW}); END"
        ),
    }
