"""Pair one table's inserts across the two sides by what they hold (pure: no I/O).

    Content(columns, translate)          how two inserted rows of one table are compared
    pair_inserts(primary, shadow, content) -> (pairs, missing, extra)
    pair_unique(primary, shadow, content) -> pairs whose content no other row shares

The inserts of one exchange, or of a group of overlapping exchanges, are paired by their
content and not by their position, so that one extra or missing row on one side is that
one row, and every other insert still finds its twin (the sides may also have written
them in another order). The content of a row is every column both sides hold except
ignored ones and the *surrogate key* (a single integer key column: the sequences choose
it, so it must not be what makes two rows differ); each value goes through the dialect
bridge with its column rule, and a foreign key on the primary side is first translated
through the key map, the way the row diff compares them.

Three passes, deterministic for the same input:

1. exact: rows whose content is equal share a fingerprint (the canonical forms of their
   values). Within one fingerprint rows pair in write order. A column with a tolerance
   cannot be fingerprinted; it is checked for each candidate, the first `WINDOW` rows
   of the bucket at most.
2. best match: each primary row left is scored against the shadow rows left near its
   rank (within `WINDOW`, widened by the difference in counts, at most `MAX_SPAN`): the
   number of columns that differ. Pairs are taken cheapest first, then nearest in rank,
   then in primary order.
3. rows still left pair in write order up to the shorter side; the rest of the primary
   side is missing on the shadow, the rest of the shadow side is extra.

Cost: one fingerprint per row, at most `MAX_SPAN` scores per row: O(n·k) for n rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

from shadow.compare.bridge import ValueKind, canonical, values_equal
from shadow.rows.model import ColumnRule

#: How many shadow rows on each side of a primary row's rank are scored against it.
WINDOW = 8
#: The most shadow rows one primary row is scored against.
MAX_SPAN = 64

Row = Any  # a NetChange of shadow.rows.diff: .after holds the inserted image
Translate = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class CompareColumn:
    """One column both sides hold: its name in each side's images, how it is compared,
    and the table its primary-side values point at (a foreign key), if any."""

    primary: str
    shadow: str
    kind: ValueKind
    rule: ColumnRule
    parent: str | None = None


class Content:
    """The content of one table's inserted rows, as the pairing compares it.

    `translate(parent, value)` gives the shadow's key for a primary key `value` of table
    `parent`, or `value` itself when no pair is known.
    """

    def __init__(self, columns: Sequence[CompareColumn], translate: Translate) -> None:
        self.columns = tuple(columns)
        self.translate = translate
        self.exact = tuple(c for c in self.columns if c.rule.tolerance == 0)
        self.loose = tuple(c for c in self.columns if c.rule.tolerance > 0)

    def primary_value(self, row: Row, column: CompareColumn) -> Any:
        value = (row.after or {}).get(column.primary)
        if column.parent is not None and value is not None:
            return self.translate(column.parent, value)
        return value

    def fingerprint(self, row: Row, primary: bool) -> tuple:
        """A hashable form of the row's exact columns: equal for rows the bridge calls equal."""
        image = row.after or {}
        out = []
        for column in self.exact:
            value = self.primary_value(row, column) if primary else image.get(column.shadow)
            form, _ = canonical(value, column.kind, empty_is_null=column.rule.empty_is_null)
            out.append(token(form))
        return tuple(out)

    def differing(self, p: Row, s: Row, columns: Sequence[CompareColumn] | None = None) -> int:
        """How many of `columns` (default: all) differ between primary row `p` and shadow row `s`."""
        image = s.after or {}
        count = 0
        for column in self.columns if columns is None else columns:
            equal, _ = values_equal(self.primary_value(p, column), image.get(column.shadow),
                                    column.kind, tolerance=column.rule.tolerance,
                                    empty_is_null=column.rule.empty_is_null)
            count += not equal
        return count


def token(form: object) -> tuple:
    """`form` tagged so that only forms the bridge calls equal share a token."""
    if type(form) is int or type(form) is Decimal:
        return ("nan",) if type(form) is Decimal and form.is_nan() else ("number", form)
    try:
        hash(form)
    except TypeError:
        return ("repr", repr(form))
    return (type(form).__name__, form)


def pair_inserts(primary: Sequence[Row], shadow: Sequence[Row], content: Content
                 ) -> tuple[list[tuple[Row, Row]], list[Row], list[Row]]:
    """(pairs, missing, extra): `primary` and `shadow` inserts paired by content (see the
    module doc); pairs in primary write order, missing in primary order, extra in shadow
    order."""
    p_match: list[int | None] = [None] * len(primary)
    s_taken = [False] * len(shadow)
    _exact(primary, shadow, content, p_match, s_taken)
    p_left = [i for i, j in enumerate(p_match) if j is None]
    s_left = [j for j, taken in enumerate(s_taken) if not taken]
    _best(primary, shadow, content, p_left, s_left, p_match, s_taken)
    rest = [j for j, taken in enumerate(s_taken) if not taken]
    for i, j in zip([i for i, j in enumerate(p_match) if j is None], rest, strict=False):
        p_match[i] = j
        s_taken[j] = True
    pairs = [(primary[i], shadow[j]) for i, j in enumerate(p_match) if j is not None]
    missing = [primary[i] for i, j in enumerate(p_match) if j is None]
    extra = [shadow[j] for j, taken in enumerate(s_taken) if not taken]
    return pairs, missing, extra


def pair_unique(primary: Sequence[Row], shadow: Sequence[Row], content: Content
                ) -> list[tuple[Row, Row]]:
    """The pairs of rows whose content is equal and held by no other row on either side:
    what can be paired while more rows may still arrive on one side (a partner not yet
    seen, or a twin of the same content, leaves a row unpaired). No pairs when the
    content has no column to compare."""
    if not content.columns:
        return []
    buckets: dict[tuple, list[list[int]]] = {}
    for side, rows in ((0, primary), (1, shadow)):
        for index, row in enumerate(rows):
            slot = buckets.setdefault(content.fingerprint(row, primary=side == 0), [[], []])
            slot[side].append(index)
    pairs = []
    for p_found, s_found in buckets.values():
        if len(p_found) == 1 == len(s_found):
            p, s = primary[p_found[0]], shadow[s_found[0]]
            if not content.loose or content.differing(p, s, content.loose) == 0:
                pairs.append((p, s))
    return pairs


def _exact(primary: Sequence[Row], shadow: Sequence[Row], content: Content,
           p_match: list[int | None], s_taken: list[bool]) -> None:
    buckets: dict[tuple, deque[int]] = {}
    for j, row in enumerate(shadow):
        buckets.setdefault(content.fingerprint(row, primary=False), deque()).append(j)
    for i, row in enumerate(primary):
        bucket = buckets.get(content.fingerprint(row, primary=True))
        if not bucket:
            continue
        for position, j in enumerate(islice(bucket, WINDOW)):
            if not content.loose or content.differing(row, shadow[j], content.loose) == 0:
                p_match[i] = j
                s_taken[j] = True
                del bucket[position]  # position < WINDOW: constant time in a deque
                break


def _best(primary: Sequence[Row], shadow: Sequence[Row], content: Content, p_left: list[int],
          s_left: list[int], p_match: list[int | None], s_taken: list[bool]) -> None:
    if not p_left or not s_left:
        return
    surplus = len(s_left) - len(p_left)
    below, above = WINDOW + max(0, -surplus), WINDOW + max(0, surplus)
    scored = []
    for rank, i in enumerate(p_left):
        low = max(0, rank - below)
        high = min(len(s_left), rank + above + 1, low + MAX_SPAN)
        for s_rank in range(low, high):
            j = s_left[s_rank]
            scored.append((content.differing(primary[i], shadow[j]), abs(s_rank - rank), i, j))
    scored.sort()
    for _cost, _distance, i, j in scored:
        if p_match[i] is None and not s_taken[j]:
            p_match[i] = j
            s_taken[j] = True
