"""The stored record of one comparison: the only way anything from a request, a reply or
a row reaches the state store, and through it the API, the browser and the logs.

A sample keeps the structure of both replies, the request and the row images, and for
every value either the value (booleans, null, short numbers, and what `[privacy] keep`
names) or a placeholder with its type, length and keyed fingerprint. A difference keeps
its kind, a path whose value-like keys are fingerprinted, both sides as stored, both
types and fingerprints, and its detail with quoted values taken out. An id of the
shadow's reply read as the primary's before comparing keeps its path, table and both ids
as any value is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from shadow.compare.jsonpath import parse_path, render_path
from shadow.privacy import bodies
from shadow.privacy.logs import LogShaper
from shadow.privacy.shapes import Shaper, type_name
from shadow.verdict import Comparison, Difference, Kind, Observation

SAMPLE_BODY_BYTES = 65536
"""Reply bodies larger than this are not kept in samples (a note with their size is)."""
ROW_KINDS = frozenset({Kind.ROW_MISSING, Kind.ROW_EXTRA, Kind.ROW_CHANGED})
NOT_STORED = "values differ (not stored)"
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_LONG_NUMBER = re.compile(r"\d[\d ().+-]{7,}\d")
_AT = re.compile(r"\S+@\S+")


class SampleBuilder:
    """Builds samples and safe difference paths under one Shaper."""

    def __init__(self, shaper: Shaper, logs: LogShaper | None = None) -> None:
        self.shaper = shaper
        self.log_shaper = logs or LogShaper(shaper.fp, kept_name=shaper.kept_name)

    def logs(self, found: dict[str, list[str]]) -> dict[str, list[str]]:
        """Backend log lines (already masked where they were read) as a sample holds
        them: known words kept, every other word a fingerprint."""
        return self.log_shaper.lines(found)

    def sample(self, c: Comparison, labels: dict[str, str]) -> dict[str, Any]:
        ex, s = c.exchange, self.shaper
        headers = {k.lower(): v for k, v in ex.headers}
        return {
            "exchange": {
                "id": ex.id, "method": ex.method, "route": ex.route,
                "target": bodies.target(s, ex.target, ex.route),
                "headers": s.headers(ex.headers),
                "body": bodies.body(s, ex.body, headers.get("content-type"),
                                    headers.get("content-encoding")),
                "at": ex.received_at,
            },
            "verdict": str(c.verdict), "normalised": c.normalised, "reason": c.reason,
            "primary": self.observation(c.primary, labels),
            "shadow": self.observation(c.shadow, labels) if c.shadow else None,
            "differences": [self.difference(d) for d in c.differences],
            "translated": [self.translated(t) for t in c.translated],
        }

    def translated(self, t: Any) -> dict[str, Any]:
        """One id of the shadow's reply read as the primary's (shadow.rows.ids.Translated):
        where (as a difference's path is stored), which table, both ids as values are."""
        s = self.shaper
        return {"path": self.path(Difference(Kind.BODY, t.path, None, None)),
                "table": s.key(t.table), "shadow": s.leaf(t.shadow),
                "read_as": s.leaf(t.primary), "source": t.source}

    def observation(self, obs: Observation, labels: dict[str, str]) -> dict[str, Any]:
        reply, s = obs.reply, self.shaper
        return {
            "backend": obs.backend, "label": labels.get(obs.backend, obs.backend),
            "role": str(obs.role), "status": reply.status, "error": reply.error,
            "elapsed_ms": round(reply.elapsed * 1000, 3),
            "headers": s.headers(reply.headers),
            "body": bodies.body(s, reply.body, reply.header("content-type"),
                                reply.header("content-encoding")),
            "rows": [{"table": s.key(ch.table), "key": [s.leaf(k) for k in ch.key],
                      "op": ch.op, "before": s.row(ch.table, ch.before),
                      "after": s.row(ch.table, ch.after)} for ch in obs.rows],
        }

    def difference(self, d: Difference) -> dict[str, Any]:
        """One difference as stored (see the module docstring)."""
        s = self.shaper
        kept = self._kept(d)
        primary = s.value(d.primary, True) if kept else self._shown(d, d.primary)
        shadow = s.value(d.shadow, True) if kept else self._shown(d, d.shadow)
        out = {"kind": str(d.kind), "path": self.path(d), "primary": primary,
               "shadow": shadow, "detail": self.detail(d.detail),
               "types": [type_name(d.primary), type_name(d.shadow)],
               "fingerprints": [s.fp(d.primary), s.fp(d.shadow)]}
        if primary != d.primary or shadow != d.shadow:
            out["note"] = NOT_STORED
        return out

    def _kept(self, d: Difference) -> bool:
        keep = self.shaper.keep
        if d.kind is Kind.HEADER:
            return keep.header(d.path)
        if d.kind is Kind.BODY:
            try:
                return keep.path(parse_path(d.path))
            except ValueError:
                return False
        if d.kind in ROW_KINDS:
            table, _, column = _row_parts(d.path)
            return bool(column) and keep.column(table, column)
        return False

    def _shown(self, d: Difference, value: Any) -> Any:
        if d.kind in ROW_KINDS and isinstance(value, dict):
            return self.shaper.row(_row_parts(d.path)[0], value)
        if d.kind is Kind.BODY:
            try:
                return self.shaper.json(value, parse_path(d.path))
            except ValueError:
                pass
        return self.shaper.value(value)

    def with_safe_paths(self, c: Comparison) -> Comparison:
        """`c` with each difference's path as `path` shows it: what findings fold into
        their keys, titles, cascade evidence and proposed rules, which are stored."""
        if not c.differences:
            return c
        return replace(c, differences=tuple(replace(d, path=self.path(d))
                                            for d in c.differences))

    def path(self, d: Difference) -> str:
        """Where a difference is, with every key that is itself a value fingerprinted
        (`$['«key #…»'].x`, `users[«str 9 #…»].role`)."""
        s = self.shaper
        if d.kind is Kind.BODY:
            try:
                return render_path(s.key(p) if isinstance(p, str) else p
                                   for p in parse_path(d.path))
            except ValueError:
                return "$" if d.path == "$" else f"«path {s.fp(d.path)}»"
        if d.kind is Kind.HEADER:
            return s.key(d.path)
        if d.kind in ROW_KINDS:
            table, key, column = _row_parts(d.path)
            try:
                parts = json.loads(f"[{key}]") if key != "*" else None
            except ValueError:
                parts = [key]
            shown = "*" if parts is None else ",".join(
                json.dumps(v) if not isinstance(v, str) else v
                for v in (s.leaf(p) for p in parts))
            return f"{s.key(table)}[{shown}]" + (f".{s.key(column)}" if column else "")
        return d.path if d.path == "status" else s.key(d.path)

    def detail(self, text: str) -> str:
        """A difference's detail with quoted values, long numbers and addresses taken
        out; the details the comparison writes are otherwise fixed sentences."""
        text = _QUOTED.sub("'…'", text)
        text = _AT.sub("«address»", text)
        return _LONG_NUMBER.sub("«number»", text)


def _row_parts(path: str) -> tuple[str, str, str]:
    """`table[key].column` -> (table, key text, column); column '' for a whole row."""
    table, bracket, rest = path.partition("[")
    if not bracket:
        return path, "", ""
    depth, index, quoted = 1, 0, False
    for index, char in enumerate(rest):
        if char == '"' and (index == 0 or rest[index - 1] != "\\"):
            quoted = not quoted
        elif not quoted:
            depth += {"[": 1, "]": -1}.get(char, 0)
            if depth == 0:
                break
    return table, rest[:index], rest[index + 1:].removeprefix(".")


def light(c: Comparison) -> Comparison:
    """`c` with each reply body over SAMPLE_BODY_BYTES replaced by a note of its size:
    shaping a 2 MB body for the sample (shadow.privacy) would hold the event loop for
    seconds; the differences still say what differs."""
    def noted(obs: Observation | None) -> Observation | None:
        if obs is None or len(obs.reply.body) <= SAMPLE_BODY_BYTES:
            return obs
        note = f"[{len(obs.reply.body)} bytes: not kept, over {SAMPLE_BODY_BYTES}]".encode()
        headers = tuple((k, v) for k, v in obs.reply.headers
                        if k.lower() not in ("content-type", "content-encoding"))
        return replace(obs, reply=replace(obs.reply, body=note,
                                          headers=headers + (("Content-Type", "text/plain"),)))

    ex = c.exchange
    if len(ex.body) > SAMPLE_BODY_BYTES:
        ex = replace(ex, body=f"[{len(ex.body)} bytes: not kept, over {SAMPLE_BODY_BYTES}]"
                     .encode())
    if ex is c.exchange and all(
            len(o.reply.body) <= SAMPLE_BODY_BYTES for o in (c.primary, c.shadow) if o):
        return c
    return replace(c, exchange=ex, primary=noted(c.primary), shadow=noted(c.shadow))
