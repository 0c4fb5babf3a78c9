"""What a column or a value means: `ValueKind`, and the kinds of declared column types.

The row comparison reads each table's declared column types on both sides, maps them to
a kind with `kind_of_sqlite` / `kind_of_postgres`, and compares a column pair under
`pair_kind` of the two. The bridge (`shadow.compare.bridge`) then canonicalises values
under that kind.
"""

from __future__ import annotations

import re
from enum import StrEnum


class ValueKind(StrEnum):
    """What a value means, whatever its rendering."""

    ANY = "any"
    BOOL = "bool"
    INTEGER = "integer"
    NUMERIC = "numeric"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    JSON = "json"
    BYTES = "bytes"


def kind_of_sqlite(declared_type: str) -> ValueKind:
    """The kind of a SQLite column from its declared type (`BOOLEAN`, `INTEGER`,
    `DATETIME`, `VARCHAR(20)`, `DECIMAL(10,2)`, `JSON`, `BLOB`, ``...).

    Follows SQLite's affinity rules, except that the names SQLite treats as numeric
    without meaning a number (`UUID`, an empty type) are ANY.
    """
    name = (declared_type or "").upper()
    if not name.strip():
        return ValueKind.ANY
    if "BOOL" in name:
        return ValueKind.BOOL
    if "DATE" in name or "TIME" in name:
        return ValueKind.TIMESTAMP
    if "JSON" in name:
        return ValueKind.JSON
    if "INT" in name:
        return ValueKind.INTEGER
    if "CHAR" in name or "CLOB" in name or "TEXT" in name:
        return ValueKind.TEXT
    if "BLOB" in name:
        return ValueKind.BYTES
    if any(word in name for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL", "NUMBER", "MONEY")):
        return ValueKind.NUMERIC
    return ValueKind.ANY


_POSTGRES_KINDS = {
    "boolean": ValueKind.BOOL,
    "bool": ValueKind.BOOL,
    "smallint": ValueKind.INTEGER,
    "integer": ValueKind.INTEGER,
    "bigint": ValueKind.INTEGER,
    "int2": ValueKind.INTEGER,
    "int4": ValueKind.INTEGER,
    "int8": ValueKind.INTEGER,
    "int": ValueKind.INTEGER,
    "smallserial": ValueKind.INTEGER,
    "serial": ValueKind.INTEGER,
    "bigserial": ValueKind.INTEGER,
    "oid": ValueKind.INTEGER,
    "numeric": ValueKind.NUMERIC,
    "decimal": ValueKind.NUMERIC,
    "real": ValueKind.NUMERIC,
    "double precision": ValueKind.NUMERIC,
    "float4": ValueKind.NUMERIC,
    "float8": ValueKind.NUMERIC,
    "money": ValueKind.NUMERIC,
    "timestamp with time zone": ValueKind.TIMESTAMP,
    "timestamp without time zone": ValueKind.TIMESTAMP,
    "timestamptz": ValueKind.TIMESTAMP,
    "timestamp": ValueKind.TIMESTAMP,
    "date": ValueKind.TIMESTAMP,
    "json": ValueKind.JSON,
    "jsonb": ValueKind.JSON,
    "bytea": ValueKind.BYTES,
    "text": ValueKind.TEXT,
    "character varying": ValueKind.TEXT,
    "varchar": ValueKind.TEXT,
    "character": ValueKind.TEXT,
    "char": ValueKind.TEXT,
    "bpchar": ValueKind.TEXT,
    "name": ValueKind.TEXT,
    "citext": ValueKind.TEXT,
    "uuid": ValueKind.TEXT,
    "time with time zone": ValueKind.TEXT,
    "time without time zone": ValueKind.TEXT,
    "time": ValueKind.TEXT,
    "timetz": ValueKind.TEXT,
}


def kind_of_postgres(data_type: str) -> ValueKind:
    """The kind of a PostgreSQL column from its `information_schema` data_type or udt
    name (`boolean`, `bigint`, `numeric(10,2)`, `timestamp with time zone`, `jsonb`,
    `bytea`, `character varying`...). Unknown types (arrays, enums, ranges) are ANY."""
    name = " ".join((data_type or "").lower().split())
    name = re.sub(r"\s*\(.*?\)", "", name)
    return _POSTGRES_KINDS.get(name, ValueKind.ANY)


_PAIRS = {
    frozenset({ValueKind.INTEGER, ValueKind.BOOL}): ValueKind.BOOL,
    frozenset({ValueKind.NUMERIC, ValueKind.BOOL}): ValueKind.BOOL,
    frozenset({ValueKind.TEXT, ValueKind.BOOL}): ValueKind.BOOL,
    frozenset({ValueKind.INTEGER, ValueKind.NUMERIC}): ValueKind.NUMERIC,
    frozenset({ValueKind.TEXT, ValueKind.INTEGER}): ValueKind.INTEGER,
    frozenset({ValueKind.TEXT, ValueKind.NUMERIC}): ValueKind.NUMERIC,
    frozenset({ValueKind.TEXT, ValueKind.TIMESTAMP}): ValueKind.TIMESTAMP,
    frozenset({ValueKind.INTEGER, ValueKind.TIMESTAMP}): ValueKind.TIMESTAMP,
    frozenset({ValueKind.NUMERIC, ValueKind.TIMESTAMP}): ValueKind.TIMESTAMP,
    frozenset({ValueKind.TEXT, ValueKind.JSON}): ValueKind.JSON,
    frozenset({ValueKind.BYTES, ValueKind.JSON}): ValueKind.JSON,
    frozenset({ValueKind.TEXT, ValueKind.BYTES}): ValueKind.BYTES,
}


def pair_kind(a: ValueKind, b: ValueKind) -> ValueKind:
    """The kind to compare a legacy column of kind `a` and a candidate column of kind
    `b` under: the more specific meaning wins (INTEGER+BOOL -> BOOL, TEXT+TIMESTAMP ->
    TIMESTAMP, TEXT+JSON -> JSON, NUMERIC+INTEGER -> NUMERIC; ANY yields to the other).
    Pairs with no common meaning compare as ANY."""
    if a == b:
        return a
    if a == ValueKind.ANY:
        return b
    if b == ValueKind.ANY:
        return a
    return _PAIRS.get(frozenset({a, b}), ValueKind.ANY)
