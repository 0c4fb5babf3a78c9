"""Change capture by logical decoding: a replication slot read over a normal connection.

Why `test_decoding` through `pg_logical_slot_get_changes()`: it ships with PostgreSQL
(managed services included), it is read with a plain SQL call over the connection the
capture already has (asyncpg speaks no replication protocol, and no other client is
needed), and its text names every column with its type, so one parser serves every
schema. `pgoutput` would need a publication (an object in the app's schema, and
REPLICA IDENTITY rules for UPDATE/DELETE on published tables) and the binary
replication protocol. What decoding gives: nothing in the app's schema, no cost inside
the app's transactions, TRUNCATE, and each change's commit time (`include-timestamp`),
which is `RowChange.at`. What it does not give: before images (the app's tables keep
their replica identity; a DELETE names the old key, an UPDATE its new row and, when the
key changed, the old key).

WAL kept by the slot is bounded by the server's `max_slot_wal_keep_size`: install picks
decoding only when that is set (not -1). A slot that fell behind that bound is `lost`;
the capture then drops and re-creates it and reports the gap.

    Decoded        one change as decoded (schema, table, op, key/new values, commit time)
    parse_changes  test_decoding's text lines -> Decoded records, in commit order
    to_changes     Decoded records -> RowChanges of the captured tables
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shadow.verdict import RowChange

PLUGIN = "test_decoding"
OPTIONS = ("'include-timestamp', '1', 'skip-empty-xacts', '1', 'include-xids', '0'")
GET_CHANGES = f"SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, {OPTIONS})"
CREATE_SLOT = "SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)"
DROP_SLOT = ("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
             "WHERE slot_name = $1")
SLOT_STATE = """
SELECT wal_status, safe_wal_size,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()
"""
#: Can this role and server decode? (wal_level, the WAL bound, replication right)
ABLE = """
SELECT current_setting('wal_level'), current_setting('max_slot_wal_keep_size'),
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
       current_setting('max_replication_slots')::int
         - (SELECT count(*) FROM pg_replication_slots)
"""

UNCHANGED = object()
_HEAD = re.compile(r'table (?P<table>(?:"(?:[^"]|"")*"|[^.:" ]+)\.(?:"(?:[^"]|"")*"|[^: ]+)): '
                   r"(?P<op>INSERT|UPDATE|DELETE|TRUNCATE): ?")
_COMMIT = re.compile(r"COMMIT(?: \d+)?(?: \(at (?P<at>[^)]+)\))?$")
_INTS = {"smallint", "integer", "bigint", "oid"}
_NUMBERS = {"numeric", "real", "double precision"}
_STAMPS = {"timestamp with time zone", "timestamp without time zone"}


def slot_name(database: str) -> str:
    """The slot of `database`: slot names are per server, lower case letters, digits and
    underscores, at most 63 characters."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", database.lower())
    return f"shadow_{cleaned}"[:63]


def unable(wal_level: str, keep: str, replication: bool | None, free_slots: int) -> str:
    """Why decoding cannot be used here ('' when it can)."""
    if wal_level != "logical":
        return f"wal_level is {wal_level}, not logical"
    if not replication:
        return "the installing role has no REPLICATION attribute"
    if keep in ("-1", ""):
        return ("max_slot_wal_keep_size is -1: a slot would keep WAL without bound while "
                "the proxy is down (set it, e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '1GB')")
    if free_slots < 1:
        return "no free replication slot (max_replication_slots)"
    return ""


@dataclass(slots=True)
class Decoded:
    """One decoded change: `key` holds the old key's values (DELETE, or an UPDATE that
    changed the key), `new` the new row (INSERT, UPDATE); `at` is the commit time."""

    schema: str
    table: str
    op: str
    key: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    at: float | None = None
    unchanged: list[str] = field(default_factory=list)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _split_table(qualified: str) -> tuple[str, str]:
    match = re.fullmatch(r'((?:"(?:[^"]|"")*"|[^."]+))\.(.+)', qualified)
    if match is None:
        raise ValueError(f"not a qualified table name: {qualified!r}")
    return _unquote(match[1]), _unquote(match[2])


def _value(type_name: str, text: str | None) -> Any:
    """A decoded value as the trigger method would give it (row_to_json through json):
    integers, Decimal numbers, booleans, parsed JSON, bytes, ISO timestamps."""
    if text is None:
        return None
    base = type_name.split("(")[0].strip()
    if base in _INTS or base in _NUMBERS:
        return json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    if base == "boolean":
        return text == "true"
    if base in ("json", "jsonb"):
        return json.loads(text, parse_float=Decimal)
    if base == "bytea" and text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    if base in _STAMPS:
        return datetime.fromisoformat(text).isoformat()
    return text


def _columns(text: str, pos: int) -> tuple[dict[str, Any], list[str], int]:
    """Columns `name[type]:value` from `pos` until the end or the next section word;
    returns the values, the names left unchanged (toasted), and where it stopped."""
    values: dict[str, Any] = {}
    unchanged: list[str] = []
    while pos < len(text):
        if text.startswith(("new-tuple:", "old-key:"), pos):
            break
        name_match = re.compile(r'"(?:[^"]|"")*"|[^\[ ]+').match(text, pos)
        if name_match is None or not text.startswith("[", name_match.end()):
            raise ValueError(f"test_decoding: no column at {pos}: {text[pos:pos + 60]!r}")
        close = text.index("]:", name_match.end())
        name, type_name = _unquote(name_match[0]), text[name_match.end() + 1:close]
        pos = close + 2
        if text.startswith("'", pos):
            end = pos + 1
            while True:
                end = text.index("'", end)
                if text.startswith("''", end):
                    end += 2
                    continue
                break
            values[name] = _value(type_name, text[pos + 1:end].replace("''", "'"))
            pos = end + 1
        else:
            end = text.find(" ", pos)
            end = len(text) if end < 0 else end
            raw = text[pos:end]
            pos = end
            if raw == "unchanged-toast-datum":
                unchanged.append(name)
            else:
                values[name] = None if raw == "null" else _value(type_name, raw)
        while text.startswith(" ", pos):
            pos += 1
    return values, unchanged, pos


def parse_change(line: str) -> Decoded:
    """One `table schema.name: OP: ...` line; raises ValueError for anything else."""
    head = _HEAD.match(line)
    if head is None:
        raise ValueError(f"test_decoding: not a change: {line[:80]!r}")
    schema, table = _split_table(head["table"])
    op, pos = head["op"].lower(), head.end()
    change = Decoded(schema, table, op)
    if op == "truncate" or line.startswith("(no-tuple-data)", pos):
        return change
    if op == "update" and line.startswith("old-key:", pos):
        change.key, _, pos = _columns(line, pos + len("old-key:") + 1)
    if line.startswith("new-tuple:", pos):
        pos += len("new-tuple:") + 1
    values, change.unchanged, _ = _columns(line, pos)
    if op == "delete":
        change.key = values
    else:
        change.new = values
    return change


def parse_changes(lines: list[str]) -> list[Decoded]:
    """Every change of `lines` (BEGIN ... COMMIT blocks), each carrying its transaction's
    commit time in epoch seconds."""
    out: list[Decoded] = []
    open_block: list[Decoded] = []
    for line in lines:
        if line.startswith("BEGIN"):
            open_block = []
        elif line.startswith("COMMIT"):
            match = _COMMIT.match(line)
            at = None
            if match and match["at"]:
                at = datetime.fromisoformat(match["at"]).timestamp()
            for change in open_block:
                change.at = at
            out += open_block
            open_block = []
        else:
            open_block.append(parse_change(line))
    return out


def key_of(info_key: tuple[str, ...], values: dict[str, Any] | None) -> tuple[Any, ...]:
    """The key of a decoded row, in key order (None where a column is missing)."""
    return tuple((values or {}).get(name) for name in info_key)


def to_changes(decoded: list[Decoded], schema: str, tables: dict, covers) -> list[RowChange]:
    """RowChanges of the decoded changes to verifiable tables of `schema` that `covers`
    (the rules) keeps, in commit order; an UPDATE that changed the key is a delete of the
    old key and an insert of the new one; a TRUNCATE is one change with an empty key."""
    changes: list[RowChange] = []
    for change in decoded:
        info = tables.get(change.table)
        if change.schema != schema or info is None or not info.verifiable:
            continue
        if not covers(change.table):
            continue
        if change.op == "truncate":
            changes.append(RowChange(change.table, (), "truncate", None, None, change.at))
        elif change.op == "delete":
            changes.append(RowChange(change.table, key_of(info.key, change.key), "delete",
                                     None, None, change.at))
        else:
            new_key = key_of(info.key, change.new)
            if change.key is not None and key_of(info.key, change.key) != new_key:
                old_key = key_of(info.key, change.key)
                changes.append(RowChange(change.table, old_key, "delete", None, None, change.at))
                changes.append(RowChange(change.table, new_key, "insert", None, change.new,
                                         change.at))
            else:
                changes.append(RowChange(change.table, new_key, change.op, None, change.new,
                                         change.at))
    return changes
