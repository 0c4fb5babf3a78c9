"""Ids across a burnt sequence: what the shadow is sent and what it answers, translated
through the key map.

Once a failed insert has burnt a sequence value on one side, the same row has another id
on each side (legacy 7 is candidate 8). Without translation every later request that
names that row would reach the wrong row on the shadow, and every reply that shows the id
would differ. With it, a request to the shadow has its id path segments and `*_id` JSON
fields mapped to the shadow's keys, and the shadow's reply has its ids mapped back before
it is compared, so one burnt value costs one mismatch, not all later ones.

Which table an id belongs to is read from names, the way REST APIs are written: a
`{id}` segment belongs to the collection segment before it (`/api/moods/{id}` -> moods),
a `user_id` field to `users`, an `id` field to the collection it is listed under or else
to the route's collection. Only tables whose pairs really differ are touched.

A reply is read first through the pairs its own group's rows taught (`GroupPairs`: when
overlapping writes commit in another order on each side, the shadow's id 4 may be the
primary's 3 while the key map already moved on), then through the key map; each id read
as another is noted (`Translated`), so a sample can show the operator what was mapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from shadow.compare.jsonpath import render_path
from shadow.rows.keymap import KeyMap, Pair
from shadow.rows.model import fold
from shadow.rows.naming import table_named

GroupPairs = dict[str, dict[Any, Any]]
"""Per table, shadow id -> primary id, as one group's rows paired them."""


@dataclass(frozen=True, slots=True)
class Translated:
    """One id of a shadow reply read as the primary's: where, which table, the id the
    shadow answered, the id it stands for, and what said so (`group`: the pairs of this
    exchange's group's rows; `key map`: a pair learnt before)."""

    path: str
    table: str
    shadow: Any
    primary: Any
    source: str


def group_pairs(pairs: Iterable[Pair]) -> GroupPairs:
    """The (table, primary key, shadow key) pairs of one group, as shadow id -> primary
    id per table; only single-column keys (the ids a reply can show)."""
    out: GroupPairs = {}
    for table, primary, shadow in pairs:
        if len(primary) == 1 == len(shadow):
            out.setdefault(fold(table), {})[shadow[0]] = primary[0]
    return out


class IdTranslator:
    """Maps ids between the legacy (keymap primary) side and the candidate side."""

    def __init__(self, keymap: KeyMap, tables: set[str]) -> None:
        self.keymap = keymap
        self.tables = {fold(t) for t in tables}
        self.shifted: set[str] = set()
        self._names: dict[str, str | None] = {}

    def learn(self, pairs) -> None:
        """Note tables whose new (table, legacy key, candidate key) pairs differ."""
        for table, legacy, candidate in pairs:
            if legacy != candidate:
                self.shifted.add(fold(table))

    @property
    def active(self) -> bool:
        return bool(self.shifted)

    def table_for(self, name: str) -> str | None:
        """The shifted table a name refers to (`moods`, `mood_id`, `journal`), or None."""
        if name not in self._names:
            self._names[name] = table_named(name, self.tables)
        return self._names[name]

    def _map(self, table: str | None, value: Any, to_candidate: bool) -> Any:
        return self._read(table, value, to_candidate, None)[0]

    def _read(self, table: str | None, value: Any, to_candidate: bool,
              group: GroupPairs | None) -> tuple[Any, str]:
        """`value` of `table` on the other side, and what said so ("" when unchanged)."""
        if table is None or isinstance(value, bool):
            return value, ""
        if isinstance(value, str) and value.isdigit():
            mapped, source = self._read(table, int(value), to_candidate, group)
            return (str(mapped), source) if source else (value, "")
        if not isinstance(value, int):
            return value, ""
        local = group.get(table) if group else None
        if local is not None and value in local:
            found = local[value]
            return (found, "group") if found != value else (value, "")
        if table not in self.shifted:
            return value, ""
        pair = (self.keymap.shadow_key(table, (value,)) if to_candidate
                else self.keymap.primary_key(table, (value,)))
        if pair is None or pair[0] == value:
            return value, ""
        return pair[0], "key map"

    # --- requests to the shadow -------------------------------------------------------

    def target(self, template: str, target: str, to_candidate: bool) -> str:
        """A request target with id segments mapped (query string untouched)."""
        path, sep, query = target.partition("?")
        parts, names = path.split("/"), template.split("/")
        if len(parts) != len(names):
            return target
        out = list(parts)
        for index, name in enumerate(names):
            if not name.startswith("{"):
                continue
            field = name[1:-1]
            table = self.table_for(field) if field != "id" else (
                self.table_for(names[index - 1]) if index else None)
            out[index] = str(self._map(table, parts[index], to_candidate))
        return "/".join(out) + sep + query

    def body(self, body: bytes, to_candidate: bool) -> bytes:
        """A JSON request body with `*_id` fields mapped; other bodies unchanged."""
        return self._json(body, None, to_candidate, ids_too=False)

    # --- replies from the shadow --------------------------------------------------------

    def reply(self, body: bytes, collection: str | None, to_candidate: bool) -> bytes:
        """A JSON reply with `id` and `*_id` fields mapped to the other side's keys."""
        return self.read_reply(body, collection, to_candidate)[0]

    def read_reply(self, body: bytes, collection: str | None, to_candidate: bool,
                   group: GroupPairs | None = None) -> tuple[bytes, tuple[Translated, ...]]:
        """A shadow's JSON reply with its ids read as the primary's: through `group`
        (its own group's pairs) first, then the key map; and each id so read."""
        table = self.table_for(collection) if collection else None
        notes: list[Translated] = []
        return self._json(body, table, to_candidate, True, group, notes), tuple(notes)

    def _json(self, body: bytes, table: str | None, to_candidate: bool, ids_too: bool,
              group: GroupPairs | None = None, notes: list[Translated] | None = None) -> bytes:
        """`body` with its ids mapped if it is JSON; the same bytes if nothing changed."""
        if not body or body[:1] not in (b"{", b"["):
            return body
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        walk = _Walk(self, to_candidate, ids_too, group, notes)
        mapped = walk.value(doc, table, ())
        return body if mapped == doc else orjson.dumps(mapped)


class _Walk:
    """One walk of a JSON document, mapping ids (and noting them when `notes` is a list)."""

    def __init__(self, ids: IdTranslator, to_candidate: bool, ids_too: bool,
                 group: GroupPairs | None, notes: list[Translated] | None) -> None:
        self.ids, self.to_candidate, self.ids_too = ids, to_candidate, ids_too
        self.group, self.notes = group, notes

    def value(self, value: Any, table: str | None, path: tuple) -> Any:
        if len(path) > 64:
            return value
        if isinstance(value, list):
            return [self.value(v, table, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            low = key.lower()
            if low == "id" and self.ids_too:
                out[key] = self.one(table, item, (*path, key))
            elif low.endswith("_id"):
                out[key] = self.one(self.ids.table_for(low), item, (*path, key))
            else:
                inner = self.ids.table_for(key) or table
                out[key] = self.value(item, inner, (*path, key))
        return out

    def one(self, table: str | None, value: Any, path: tuple) -> Any:
        mapped, source = self.ids._read(table, value, self.to_candidate, self.group)
        if source and self.notes is not None and table is not None:
            self.notes.append(Translated(render_path(path), table, value, mapped, source))
        return mapped


def collection_of(template: str) -> str | None:
    """The collection segment a route is about: the literal before `{id}` or the last."""
    names = [n for n in template.split("/") if n]
    for index in range(len(names) - 1, -1, -1):
        if not names[index].startswith("{"):
            return names[index]
    return None
