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
"""

from __future__ import annotations

from typing import Any

import orjson

from shadow.rows.keymap import KeyMap
from shadow.rows.model import fold


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
        if name in self._names:
            return self._names[name]
        base = fold(name).removesuffix("_id").removesuffix("id").rstrip("_")
        found = None
        for candidate in (base, base + "s", base + "es"):
            if candidate in self.tables:
                found = candidate
                break
        if found is None and base:
            starts = sorted(t for t in self.tables if t.startswith(base + "_"))
            found = starts[0] if len(starts) == 1 else None
        self._names[name] = found
        return found

    def _map(self, table: str | None, value: Any, to_candidate: bool) -> Any:
        if table is None or table not in self.shifted or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            mapped = self._map(table, int(value), to_candidate)
            return str(mapped)
        if not isinstance(value, int):
            return value
        found = (self.keymap.shadow_key(table, (value,)) if to_candidate
                 else self.keymap.primary_key(table, (value,)))
        return found[0] if found else value

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
        table = self.table_for(collection) if collection else None
        return self._json(body, table, to_candidate, ids_too=True)

    def _json(self, body: bytes, table: str | None, to_candidate: bool, ids_too: bool) -> bytes:
        """`body` with its ids mapped if it is JSON; the same bytes if nothing changed."""
        if not body or body[:1] not in (b"{", b"["):
            return body
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        mapped = self._walk(doc, table, to_candidate, ids_too)
        return body if mapped == doc else orjson.dumps(mapped)

    def _walk(self, value: Any, table: str | None, to_candidate: bool, ids_too: bool,
              depth: int = 0) -> Any:
        if depth > 64:
            return value
        if isinstance(value, list):
            return [self._walk(v, table, to_candidate, ids_too, depth + 1) for v in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            low = key.lower()
            if low == "id" and ids_too:
                out[key] = self._map(table, item, to_candidate)
            elif low.endswith("_id"):
                out[key] = self._map(self.table_for(low), item, to_candidate)
            else:
                inner = self.table_for(key) or table
                out[key] = self._walk(item, inner, to_candidate, ids_too, depth + 1)
        return out


def collection_of(template: str) -> str | None:
    """The collection segment a route is about: the literal before `{id}` or the last."""
    names = [n for n in template.split("/") if n]
    for index in range(len(names) - 1, -1, -1):
        if not names[index].startswith("{"):
            return names[index]
    return None
