"""What the row layer knows about a database table, and the rules for comparing rows.

    Column      one column: name, declared type as the catalogue spells it, ValueKind
    TableInfo   one table: its key columns in order, its columns, whether it can be verified
    ColumnRule  how one column is compared: ignored, tolerance, kind override, '' as NULL
    RowRules    which tables are compared, and the ColumnRule of each "table.column"

Names are matched case-insensitively (`casefold`): SQLite identifiers are, and PostgreSQL
folds unquoted names to lower case, so `createdAt` on one side is `createdat` on the other.
All records are frozen and hold plain values only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shadow.compare.bridge import ValueKind

#: Kinds a ColumnRule may force on a column whose declared types do not say enough.
OVERRIDE_KINDS = frozenset({ValueKind.TIMESTAMP, ValueKind.BOOL, ValueKind.JSON})


def fold(name: str) -> str:
    """The form of a table or column name used for matching across the two databases."""
    return name.casefold()


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table. `declared` is the type as the catalogue spells it
    (`INTEGER`, `timestamp with time zone`, '' for an untyped SQLite column)."""

    name: str
    declared: str
    kind: ValueKind


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One application table as seen in one database.

    `key` holds the key column names in key order: the primary key, or `rowid` for a
    SQLite rowid table without one. `references` maps a column to the table whose
    single-column key it points at (a foreign key), so that shifted ids can be followed.
    `verifiable` is False when rows of the table cannot be identified (no key, a virtual
    table); `reason` then says why, and no trigger is installed on it.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    verifiable: bool = True
    reason: str = ""
    references: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def column(self, name: str) -> Column | None:
        """The column called `name` (case-insensitive), or None."""
        wanted = fold(name)
        for column in self.columns:
            if fold(column.name) == wanted:
                return column
        return None

    def kind(self, name: str) -> ValueKind:
        """The ValueKind of column `name`; ANY for an unknown column or the rowid."""
        column = self.column(name)
        return column.kind if column is not None else ValueKind.ANY

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def signature(self) -> str:
        """A stable text naming the key and every column with its declared type; a
        trigger records it at install so that a later schema change can be detected."""
        cols = ",".join(f"{c.name}:{c.declared}" for c in self.columns)
        return f"key={','.join(self.key)};cols={cols}"


@dataclass(frozen=True, slots=True)
class ColumnRule:
    """How one column is compared.

    `ignore` skips it; `tolerance` is the largest accepted difference (numbers: absolute,
    timestamps: seconds); `kind` forces a ValueKind (timestamp, bool or json) where the
    declared types do not say it; `empty_is_null` treats '' and NULL as the same value.
    Raises ValueError for a negative tolerance or a kind that may not be forced.
    """

    ignore: bool = False
    tolerance: float = 0.0
    kind: ValueKind | None = None
    empty_is_null: bool = False

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"tolerance must not be negative: {self.tolerance}")
        if self.kind is not None and self.kind not in OVERRIDE_KINDS:
            allowed = ", ".join(sorted(OVERRIDE_KINDS))
            raise ValueError(f"kind override must be one of {allowed}: {self.kind!r}")


DEFAULT_RULE = ColumnRule()


@dataclass(frozen=True, slots=True)
class RowRules:
    """Which tables are compared and how their columns are.

    `include` (None: every table) and `exclude` hold table names. `columns` maps
    "table.column" to a ColumnRule; "*.column" applies to that column in every table and
    an exact "table.column" entry wins over it. Build with `RowRules.build(...)`, which
    folds names and reports every malformed entry at once.
    """

    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    columns: Mapping[str, ColumnRule] = field(default_factory=lambda: MappingProxyType({}))
    now_tolerance: float = 2.0
    """Seconds by which two timestamps may disagree once each is taken relative to the
    moment its database made the change (see shadow.compare.moments); 0 turns it off."""

    @classmethod
    def build(
        cls,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        columns: Mapping[str, ColumnRule] | None = None,
        now_tolerance: float = 2.0,
    ) -> RowRules:
        """Rules from plain names. Raises ValueError listing every column entry that is
        not of the form "table.column" or "*.column"."""
        problems = []
        folded: dict[str, ColumnRule] = {}
        for path, rule in (columns or {}).items():
            table, dot, column = path.partition(".")
            if not dot or not table or not column:
                problems.append(f"rows.columns: not 'table.column': {path!r}")
                continue
            folded[f"{fold(table)}.{fold(column)}"] = rule
        if problems:
            raise ValueError("; ".join(problems))
        return cls(
            include=None if include is None else frozenset(fold(t) for t in include),
            exclude=frozenset(fold(t) for t in exclude),
            columns=MappingProxyType(folded),
            now_tolerance=now_tolerance,
        )

    def covers(self, table: str) -> bool:
        """Whether changes to `table` are captured and compared."""
        name = fold(table)
        if name in self.exclude:
            return False
        return self.include is None or name in self.include

    def rule(self, table: str, column: str) -> ColumnRule:
        """The rule for one column: exact entry, else the "*.column" entry, else default."""
        col = fold(column)
        found = self.columns.get(f"{fold(table)}.{col}")
        if found is None:
            found = self.columns.get(f"*.{col}", DEFAULT_RULE)
        return found
