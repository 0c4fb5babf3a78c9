"""Keep rules: the values a stored sample may hold in the clear, compiled once at start-up.

Everything not named here is stored as its structure and a keyed fingerprint. A rule is
one string in `[privacy] keep`:

    "$.status", "$..count", "$.items[*].kind"   a JSON path into request and reply bodies
                                                (a form body's fields are `$.name`); a
                                                path naming an object keeps all below it
    "users.role", "*.role"                      a row column (`table.column`, any table)
    "header:content-type"                       a request or reply header's value
    "query:page"                                a query parameter's value

Names are matched case-insensitively for headers, query parameters and columns, exactly
for JSON keys (as the documents spell them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shadow.compare.jsonpath import Pattern, compile_pattern

_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_COLUMN = re.compile(r"(\*|[A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\Z")
FORMS = ('"$.status" (JSON path)', '"users.role" or "*.role" (row column)',
         '"header:NAME"', '"query:NAME"')


@dataclass(frozen=True, slots=True)
class KeepRules:
    """The compiled `[privacy] keep` list."""

    paths: tuple[Pattern, ...] = ()
    headers: frozenset[str] = frozenset()
    queries: frozenset[str] = frozenset()
    columns: frozenset[tuple[str, str]] = frozenset()
    texts: tuple[str, ...] = ()

    @classmethod
    def compile(cls, texts: Iterable[str]) -> KeepRules:
        """The rules of `texts`; raises ValueError listing every problem."""
        texts = list(texts)
        problems = keep_problems(texts)
        if problems:
            raise ValueError("; ".join(problems))
        paths, headers, queries, columns = [], set(), set(), set()
        for text in texts:
            kind, value = _split(text)
            if kind == "path":
                paths.append(compile_pattern(text))
            elif kind == "header":
                headers.add(value.lower())
            elif kind == "query":
                queries.add(value.lower())
            else:
                table, _, column = value.partition(".")
                columns.add((table.lower(), column.lower()))
        return cls(tuple(paths), frozenset(headers), frozenset(queries), frozenset(columns),
                   tuple(texts))

    def path(self, path: Sequence[str | int]) -> bool:
        """True when the JSON value at `path` (or a value above it) may be kept."""
        return any(p.matches(path[:n]) for p in self.paths for n in range(len(path) + 1))

    def header(self, name: str) -> bool:
        return name.lower() in self.headers

    def query(self, name: str) -> bool:
        return name.lower() in self.queries

    def column(self, table: str, column: str) -> bool:
        table, column = table.lower(), column.lower()
        return (table, column) in self.columns or ("*", column) in self.columns


def _split(text: str) -> tuple[str, str]:
    """(kind, value) of one rule as written: path, header, query or column."""
    if text.startswith("$"):
        return "path", text
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in ("header", "query"):
        return prefix.lower(), rest
    return "column", text


def keep_problems(texts: Sequence[object]) -> list[str]:
    """Every problem of a `[privacy] keep` list, each with its location."""
    problems = []
    for index, text in enumerate(texts):
        where = f"privacy.keep[{index}]"
        if not isinstance(text, str) or not text:
            problems.append(f"{where}: a rule is a non-empty string")
            continue
        kind, value = _split(text)
        if kind == "path":
            try:
                compile_pattern(text)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        elif kind in ("header", "query"):
            if not _NAME.match(value):
                problems.append(f"{where}: not a {kind} name: {value!r}")
        elif not _COLUMN.match(value):
            problems.append(f"{where}: {text!r} is none of: {', '.join(FORMS)}")
    return problems
