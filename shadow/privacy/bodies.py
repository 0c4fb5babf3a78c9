"""Bodies and request targets as a stored sample holds them.

Every body kind ends as a small JSON record, never as its text:

    {"form": "json", "bytes": 812, "shape": {...}}      keys kept, values shaped
    {"form": "form", "bytes": 40, "shape": {...}}       url-encoded fields, as JSON
    {"form": "text", "bytes": 90, "lines": 3, "fingerprint": "#…"}   text, HTML, broken
                                                        or single-quoted JSON: free text
                                                        is never stored
    {"form": "bytes", "bytes": 4096, "fingerprint": "#…"}            binary
    {"form": "empty"}

Compressed bodies are decoded first (bounded, as the comparison does) and say so in
`encoding`. A target keeps the path segments its route template names literally and the
query parameter names; other segments and values are fingerprinted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from shadow.compare.lift import Form, lift
from shadow.privacy.shapes import Shaper, is_name

_FORM_TEXT = re.compile(r"[^=&\s]+=[^&\s]*(&[^=&\s]+=[^&\s]*)*\Z")


def body(shaper: Shaper, data: bytes, content_type: str | None,
         content_encoding: str | None) -> dict[str, Any]:
    """The stored record of one body (see the module docstring)."""
    if not data:
        return {"form": "empty"}
    doc = lift(data, content_type=content_type, content_encoding=content_encoding)
    out: dict[str, Any] = {"bytes": len(data)}
    if content_encoding and doc.data is not data:
        out["encoding"] = content_encoding if is_name(content_encoding) else "other"
    if doc.form is Form.JSON:
        return {"form": "json", **out, "shape": shaper.json(doc.value)}
    if doc.form is Form.TEXT:
        fields = _form_fields(doc.value, content_type)
        if fields is not None:
            return {"form": "form", **out, "shape": shaper.json(fields)}
        return {"form": "text", **out, "lines": doc.value.count("\n") + 1,
                "fingerprint": shaper.fp(doc.value)}
    return {"form": "bytes", **out, "fingerprint": shaper.fp(doc.data)}


def _form_fields(text: str, content_type: str | None) -> dict[str, Any] | None:
    """The fields of a url-encoded body (or of text that is wholly `k=v&k=v`), repeated
    names as lists; None when the text is not a form."""
    ctype = (content_type or "").lower()
    stripped = text.strip()
    if "x-www-form-urlencoded" not in ctype and not _FORM_TEXT.match(stripped):
        return None
    fields: dict[str, Any] = {}
    for name, value in parse_qsl(stripped, keep_blank_values=True, errors="replace"):
        if name in fields:
            prior = fields[name]
            fields[name] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            fields[name] = value
    return fields


def target(shaper: Shaper, raw: str, route: str) -> str:
    """A request target as stored: `/api/users/«str 17 #…»/records?page=«str 1 #…»`."""
    path, sep, query = raw.partition("?")
    literal = route.split("/")
    parts = []
    for i, segment in enumerate(path.split("/")):
        text = unquote(segment)
        same = i < len(literal) and literal[i] == segment and "{" not in segment
        parts.append(segment if not segment or (same and is_name(text)) else
                     shaper.placeholder(text))
    out = "/".join(parts)
    if sep:
        pairs = parse_qsl(query, keep_blank_values=True, errors="replace")
        out += "?" + "&".join(
            f"{shaper.key(k)}={v if shaper.keep.query(k) else shaper.placeholder(v)}"
            for k, v in pairs)
    return out
