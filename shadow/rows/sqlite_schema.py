"""SQLite catalogue reading and capture trigger text, without a connection of its own.

Every new SQLite connection parses the whole schema, triggers included, before its first
statement; an app that opens a connection per request pays for every trigger on every
request. Counted on 40 tables (`bench.sqlite_capture_breakdown --instructions`): a
trigger that does nothing costs a new connection about 20 000 instructions (about 2 us)
to parse, whatever its text (the statement machinery, the object, its hash entries);
what ours log adds about 13 000 more each, every value and column named in the INSERT
adding a share; compiling the fired trigger into the app's first INSERT, running it and
the log page it dirties cost little beside that. So the triggers are kept as small as a
trigger can be: each logs one short row (one integer for table and operation, the
rowid, and the old key only where the rowid does not give it) and nothing else; the
time comes from the log's column default and the row images are read from the table
when the log is drained (see `sqlite.py`). A trigger names no column but the key
columns, so the app's own `ADD COLUMN`, `DROP COLUMN` and `RENAME COLUMN` never touch
it. The shapes measured against this one (no column list, a shorter default, other
trigger names) save at most 1.3% of what capture costs a connection; see the README.

Each captured table has a small integer code; its triggers log `c = code * 4 + op`
(op 1 insert, 2 update, 3 delete) as a literal. The code, not the name, is logged:
after `ALTER TABLE items RENAME TO items2` SQLite moves the triggers to `items2` (their
`tbl_name`), so a logged code still resolves to the table that holds the rows.
`read_triggers` recovers codes from the stored text.

One more trigger, on the log itself, bounds it: every 1024th row deletes the rows more
than `cap` behind. The log's `seq` restarts at 1 after a drain empties it, so a drain
that finds a first `seq` above 1 knows how many changes the cap dropped.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shadow.compare.bridge import ValueKind
from shadow.rows.capture import LOG_TABLE, PREFIX, quote_ident, quote_literal
from shadow.rows.model import Column, TableInfo
from shadow.rows.naming import with_named_references

Rows = Callable[[str, Sequence[Any]], list[Any]]

ROWID_ALIASES = ("rowid", "_rowid_", "oid")
#: Smallest accepted cap, so that the every-1024th-row check always leaves `cap` rows.
MIN_CAP = 1024
DEFAULT_CAP = 100_000
CAP_TRIGGER = f"{PREFIX}cap"

LOG = quote_ident(LOG_TABLE)
#: The moment of the change in seconds since the epoch (SQLite's clock: milliseconds).
NOW = "(julianday('now') - 2440587.5) * 86400.0"
CREATE_LOG = (
    f"CREATE TABLE {LOG} (seq INTEGER PRIMARY KEY, c INTEGER NOT NULL, "
    f"r, k, at REAL DEFAULT ({NOW}))"
)
LOG_COLUMNS = f"SELECT name FROM pragma_table_info({quote_literal(LOG_TABLE)})"
LAYOUT = ("seq", "c", "r", "k", "at")
#: The operation part of a logged `c` (see the module docstring).
OPS = {1: "insert", 2: "update", 3: "delete"}
_OP_CODES = {op: n for n, op in OPS.items()}
DROP_LOG = f"DROP TABLE IF EXISTS {LOG}"
OUR_TRIGGERS = (
    "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
    f"AND name LIKE '{PREFIX.replace('_', '!_')}%' ESCAPE '!' "
    f"AND instr(sql, {quote_literal(LOG_TABLE)}) > 0 ORDER BY name"
)
HAS_LOG = f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {quote_literal(LOG_TABLE)}"
COUNT_LOG = f"SELECT count(*) FROM {LOG}"
DRAIN = f"DELETE FROM {LOG} RETURNING seq, c, r, k, at"
#: The highest table code in the log (codes still logged must not be given again).
MAX_LOGGED_CODE = f"SELECT coalesce(max(c), 0) / 4 FROM {LOG}"
SCHEMA_VERSION = "PRAGMA schema_version"
#: What every trigger and the whole schema weigh: the text a new connection parses.
SCHEMA_TEXT = "SELECT coalesce(sum(length(sql)), 0) FROM sqlite_master"
_CODE = re.compile(r"VALUES\((\d+),")

_LIST_TABLES = (
    "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' "
    "AND type IN ('table', 'virtual')"
)
_LIST_TABLES_OLD = (
    "SELECT name, CASE WHEN sql LIKE 'CREATE VIRTUAL TABLE%' THEN 'virtual' ELSE 'table' END, "
    "sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table'"
)
_COLUMNS = "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid"
_FOREIGN = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq'


@dataclass(frozen=True, slots=True)
class Layout:
    """How rows of one table are found again at drain time.

    `rowid` is the name that reaches the rowid (None for a WITHOUT ROWID table, whose
    rows are found by key); `key_is_rowid` is true when the key is the rowid itself
    (an INTEGER PRIMARY KEY, or a table keyed by rowid), so the rowid is the key."""

    rowid: str | None
    key_is_rowid: bool


def read_tables(rows: Rows, kind_of: Callable[[str], ValueKind]
                      ) -> tuple[dict[str, TableInfo], dict[str, Layout]]:
    """Every application table of the main schema, by name, sorted by name, and the
    Layout of each verifiable one: SQLite's own tables, FTS shadow tables and the change
    log are left out. Virtual tables (no triggers on them) and tables without a primary
    key (as on PostgreSQL) are listed as unverifiable."""
    try:
        listed = rows(_LIST_TABLES, ())
    except sqlite3.OperationalError:
        listed = rows(_LIST_TABLES_OLD, ())
    tables: dict[str, TableInfo] = {}
    layouts: dict[str, Layout] = {}
    foreign: dict[str, list[tuple[str, str, str | None]]] = {}
    for name, kind, without_rowid in sorted(listed):
        if name.startswith("sqlite_") or name == LOG_TABLE:
            continue
        columns, key = [], []
        for col, declared, pk, hidden in rows(_COLUMNS, (name,)):
            if hidden == 1:
                continue
            columns.append(Column(col, declared or "", kind_of(declared or "")))
            if pk:
                key.append((pk, col))
        key_names = tuple(col for _pk, col in sorted(key))
        taken = {c.name.casefold() for c in columns}
        alias = None if without_rowid else next((a for a in ROWID_ALIASES if a not in taken), None)
        reason = ""
        if kind == "virtual":
            reason = "virtual table: SQLite cannot put triggers on it"
        elif not key_names:
            reason = ("no primary key: its rows cannot be matched with the other database's "
                      "(a rowid is SQLite's own), so it is compared on neither side")
        elif alias is None and not without_rowid:
            reason = "every rowid alias is a column name"
        tables[name] = TableInfo(name, key_names, tuple(columns), not reason, reason)
        if not reason:
            integer_key = len(key) == 1 and columns_type(columns, key_names[0]) == "INTEGER"
            layouts[name] = Layout(alias, alias is not None and (not key or integer_key))
        foreign[name] = _single_column(rows(_FOREIGN, (name,)))
    infos = {name: _with_references(info, foreign[name], tables) for name, info in tables.items()}
    return with_named_references(infos), layouts


def sequence_position(rows: Rows, table: str, column: str) -> int | None:
    """An AUTOINCREMENT table's `sqlite_sequence` entry (an ignored insert burns a value
    there too); for any other rowid table, its highest key (SQLite reuses it plus one)."""
    if rows("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'", ()):
        found = rows("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        if found and isinstance(found[0][0], int):
            return found[0][0]
    found = rows(f"SELECT max({quote_ident(column)}) FROM {quote_ident(table)}", ())
    return found[0][0] if found and isinstance(found[0][0], int) else None


def columns_type(columns: Sequence[Column], name: str) -> str:
    """The declared type of column `name`, upper case ('' when unknown)."""
    return next((c.declared.upper() for c in columns if c.name == name), "")


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


@dataclass(frozen=True, slots=True)
class Installed:
    """One capture trigger found in the catalogue: its name, the table SQLite says it
    is on now, its text, and the table code and operation written into that text."""

    name: str
    table: str
    sql: str
    code: int | None
    op: str | None


def read_triggers(rows: Rows) -> list[Installed]:
    """Every capture trigger in the catalogue (the cap trigger has no code)."""
    found = []
    for name, table, sql in rows(OUR_TRIGGERS, ()):
        match = _CODE.search(sql or "")
        code, op = (int(match[1]) // 4, OPS.get(int(match[1]) % 4)) if match else (None, None)
        found.append(Installed(name, table, sql, code, op))
    return found


def drop_capture(rows: Rows) -> bool:
    """Drop every capture trigger and the change log (inside a transaction); returns
    whether there was anything to drop."""
    found = read_triggers(rows)
    present = bool(found or rows(HAS_LOG, ()))
    for trigger in found:
        rows(f"DROP TRIGGER {quote_ident(trigger.name)}", ())
    rows(DROP_LOG, ())
    return present


def trigger_names(table: str) -> dict[str, str]:
    """The names of the insert, update and delete triggers of `table`."""
    return {op: f"{PREFIX}{op[0]}_{table}" for op in ("insert", "update", "delete")}


def _quoted_key(ref: str, key: Sequence[str]) -> str:
    """The key of OLD/NEW as SQL literals joined by commas (`quote()` keeps every value
    exact: BLOBs as X'..', REALs to the last bit), decoded by `sqlite.parse_literals`."""
    return "||','||".join(f"quote({ref}.{quote_ident(k)})" for k in key)


def trigger_sql(info: TableInfo, layout: Layout, code: int) -> dict[str, str]:
    """CREATE TRIGGER statements by trigger name for a verifiable table. `r` locates the
    row to read at drain (its rowid, or its quoted key without a rowid); `k` is the key
    the row had before an update or delete, logged only where `r` does not give it (a
    delete keyed by its rowid logs `r` alone; a WITHOUT ROWID delete logs `k` alone)."""
    names = trigger_names(info.name)
    table = quote_ident(info.name)
    if layout.rowid is not None:
        new_r, old_r = f"NEW.{layout.rowid}", f"OLD.{layout.rowid}"
    else:
        new_r, old_r = _quoted_key("NEW", info.key), None
    old_k = old_r if layout.key_is_rowid else _quoted_key("OLD", info.key)

    def trigger(op: str, event: str, r: str | None, k: str | None) -> str:
        logged = {"c": str(code * 4 + _OP_CODES[op]), "r": r, "k": k}
        into = ",".join(col for col, value in logged.items() if value is not None)
        values = ",".join(value for value in logged.values() if value is not None)
        return (f"CREATE TRIGGER {quote_ident(names[op])} AFTER {event} ON {table} BEGIN "
                f"INSERT INTO {LOG_TABLE}({into})VALUES({values});END")

    return {
        names["insert"]: trigger("insert", "INSERT", new_r, None),
        names["update"]: trigger("update", "UPDATE", new_r, old_k),
        names["delete"]: trigger("delete", "DELETE", old_r,
                                 None if layout.key_is_rowid else old_k),
    }


def cap_sql(cap: int) -> str:
    """The trigger that keeps the log at most about `cap` rows long."""
    if cap < MIN_CAP:
        raise ValueError(f"the change log cap must be at least {MIN_CAP}: {cap}")
    return (f"CREATE TRIGGER {quote_ident(CAP_TRIGGER)} AFTER INSERT ON {LOG} "
            f"WHEN NEW.seq % {MIN_CAP} = 0 BEGIN DELETE FROM {LOG} "
            f"WHERE seq <= NEW.seq - {cap};END")


def select_rows(info: TableInfo, layout: Layout) -> str:
    """The query that reads current images: by a JSON array of rowids, or by one key."""
    cols = ", ".join(quote_ident(c) for c in info.column_names)
    table = quote_ident(info.name)
    if layout.rowid is not None:
        return (f"SELECT {layout.rowid}, {cols} FROM {table} "
                f"WHERE {layout.rowid} IN (SELECT value FROM json_each(?))")
    match = " AND ".join(f"{quote_ident(k)} IS ?" for k in info.key)
    return f"SELECT {cols} FROM {table} WHERE {match}"
