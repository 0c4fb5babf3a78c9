"""Cascades: "probably caused by …", only where an exchange carries direct evidence.

A `CascadeTracker` remembers, from the causes it has seen, (1) the rows a write failed to
create on the shadow (row_missing: table and key) and (2) the tables whose sequence a
failed insert or an extra row has moved on the shadow. A later cause is linked to the
cause that explains it when

    the read names a missing row  its request path carries, at a placeholder of a route
                                  about that table, the key of a row another finding
                                  failed to create (`GET /api/journal/{id}` of entry 57
                                  that `POST /api/journal` never committed), or its body
                                  lacks an element whose `id` is such a key;
    an id moved on                its `id` is higher on the shadow than on the primary, in
                                  a table whose sequence an earlier finding moved on.

The comparisons it sees carry paths as shadow.privacy shows them (row keys that are
text fingerprinted), and evidence names ids only below `_SHOWN_BELOW`, as a stored sample
would. Memory is bounded (oldest rows forgotten first). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from shadow.findings.group import Cause, folded, row_of
from shadow.rows.ids import collection_of
from shadow.verdict import Comparison, Difference, Kind

READS = frozenset({"GET", "HEAD"})
_SHOWN_BELOW = 10 ** 8
"""Numbers with 9 digits or more may be phone or card numbers: not written into evidence."""


@dataclass(frozen=True, slots=True)
class Link:
    """`finding` is probably caused by `cause`; `evidence` says what this exchange showed."""

    finding: str
    cause: str
    evidence: str


def related(collection: str | None, table: str) -> bool:
    """True when a route's collection segment (`journal`, `moods`) names `table`
    (`journal_entries`, `moods`)."""
    if not collection:
        return False
    c, t = collection.lower().rstrip("s"), table.lower().rstrip("s")
    return bool(c) and bool(t) and (t.startswith(c) or c.startswith(t))


def path_values(template: str, path: str) -> list[str]:
    """The values of `path` at the placeholders of `template` (`/a/{id}`, `/a/57` -> ['57'])."""
    names, parts = template.strip("/").split("/"), path.strip("/").split("/")
    if len(names) != len(parts):
        return []
    return [part for name, part in zip(names, parts) if name.startswith("{")]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class CascadeTracker:
    """Remembers failed and shifted writes; links later causes to them."""

    def __init__(self, max_rows: int = 50_000) -> None:
        self.max_rows = max_rows
        self.missing: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.shifted: dict[str, str] = {}
        self.tables: set[str] = set()

    def observe(self, c: Comparison, found: Iterable[Cause]) -> list[Link]:
        """The links of this exchange's causes, then remember what its causes broke."""
        found = tuple(found)
        if not found:
            return []
        values = path_values(c.exchange.route, c.exchange.path)
        folds = [folded(d) for d in c.differences]
        links = [link for cause in found for link in self._links(c, cause, values, folds)]
        for cause in found:
            self._remember(c, cause)
        return links

    def _remember(self, c: Comparison, cause: Cause) -> None:
        failed = cause.kind == "status" and c.exchange.method not in READS
        for d in c.differences:
            row = row_of(d)
            if row is None:
                continue
            created = (d.detail or "").startswith("insert")
            if d.kind == Kind.ROW_MISSING and created and (failed or cause.kind == "row_missing"):
                if row not in self.missing:
                    self.missing[row] = cause.key
                    self.tables.add(row[0])
                if failed:
                    self.shifted.setdefault(row[0], cause.key)
            elif d.kind == Kind.ROW_EXTRA and cause.kind in ("row_extra", "status"):
                self.shifted.setdefault(row[0], cause.key)
        while len(self.missing) > self.max_rows:
            self.missing.popitem(last=False)

    def _links(self, c: Comparison, cause: Cause, values: list[str],
               folds: list[str]) -> list[Link]:
        collection = collection_of(c.exchange.route)
        out: dict[str, str] = {}
        for value in values if self.missing else ():
            for (table, key), origin in self._missing_with(value):
                if related(collection, table):
                    out.setdefault(origin, f"the request reads {table} key {key}, a row "
                                           f"that never reached the shadow")
        everything = cause.kind == "status"
        for d, fold in zip(c.differences, folds):
            if not (everything or fold in cause.paths):
                continue
            if d.kind == Kind.BODY and isinstance(d.primary, dict) and d.shadow is None:
                key = _int(d.primary.get("id"))
                for (table, k), origin in self._missing_with(str(key)) if key is not None else ():
                    if related(collection, table):
                        out.setdefault(origin, f"the shadow's reply lacks {table} key {k} at "
                                               f"{d.path}, a row that never reached the shadow")
            shift = self._shift(d, collection)
            if shift is not None:
                out.setdefault(*shift)
        return [Link(cause.key, origin, evidence) for origin, evidence in out.items()
                if origin != cause.key]

    def _missing_with(self, key: str) -> list[tuple[tuple[str, str], str]]:
        found = ((table, key) for table in self.tables)
        return [(row, self.missing[row]) for row in found if row in self.missing]

    def _shift(self, d: Difference, collection: str | None) -> tuple[str, str] | None:
        """(origin, evidence) when `d` is an id the shadow numbered higher, in a table an
        earlier finding moved on."""
        if d.kind == Kind.BODY and d.path.rsplit(".", 1)[-1] == "id":
            tables = [t for t in self.shifted if related(collection, t)]
        elif d.kind == Kind.ROW_CHANGED and "key: the shadow was expected" in (d.detail or ""):
            row = row_of(d)
            tables = [row[0]] if row and row[0] in self.shifted else []
        else:
            return None
        p, s = _int(d.primary), _int(d.shadow)
        if not tables or p is None or s is None or s <= p:
            return None
        table = tables[0]
        if max(abs(p), abs(s)) >= _SHOWN_BELOW:
            return self.shifted[table], (f"{d.path} is higher on the shadow than on the "
                                         f"primary: the shadow's {table} sequence had moved on")
        return self.shifted[table], (f"{d.path} is {s} on the shadow and {p} on the primary: "
                                     f"the shadow's {table} sequence had moved on")
