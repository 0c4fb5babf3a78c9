"""Redaction: nothing secret or personal is stored or logged in the clear (promise 5).

A `Redactor` is compiled once from `[redact]` and applied to everything before it reaches
the state store, the mismatch browser or a log line: header values (`Authorization`,
`Cookie`, `Set-Cookie`...), query parameters, JSON values under sensitive keys at any
depth (`password`, `pin`, `token`, free-text `note`...), form fields, and patterns that
look like personal data anywhere in text (e-mail addresses, card numbers).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from shadow.config import RedactSettings

# Key fragments that are secret whatever the exact key (new_password, csrf_token...).
_ALWAYS = ("password", "passwd", "secret", "token", "apikey", "api_key", "credential")
_MAX_DEPTH = 200


class Redactor:
    """Applies the configured redaction. Pure; safe to share."""

    def __init__(self, settings: RedactSettings) -> None:
        self.mark = settings.replacement
        self._headers = frozenset(h.lower() for h in settings.headers)
        self._keys = frozenset(k.lower() for k in settings.json_keys)
        self._params = frozenset(p.lower() for p in settings.query_params)
        self._patterns = [re.compile(p) for p in settings.patterns]
        names = "|".join(re.escape(k) for k in sorted(self._keys))
        fragments = "|".join(re.escape(f) for f in _ALWAYS)
        # `"key": value` pairs in text that looks like JSON but does not parse.
        self._json_pairs = re.compile(
            rf'("(?i:(?:{names})|[^"\\]*(?:{fragments})[^"\\]*)"\s*:\s*)'
            r'("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')

    def sensitive_key(self, key: str) -> bool:
        low = key.lower()
        return low in self._keys or any(fragment in low for fragment in _ALWAYS)

    def text(self, value: str) -> str:
        """Personal-data patterns replaced in free text."""
        for pattern in self._patterns:
            value = pattern.sub(self.mark, value)
        return value

    def headers(self, headers) -> list[tuple[str, str]]:
        return [
            (k, self.mark if k.lower() in self._headers else self.text(v)) for k, v in headers
        ]

    def target(self, target: str) -> str:
        """A request target with sensitive query parameter values replaced."""
        path, sep, query = target.partition("?")
        if not sep:
            return self.text(path)
        pairs = parse_qsl(query, keep_blank_values=True, errors="replace")
        redacted = [
            (k, self.mark if (k.lower() in self._params or self.sensitive_key(k)) else self.text(v))
            for k, v in pairs
        ]
        return self.text(path) + "?" + urlencode(redacted, safe="[]")

    def value(self, value: Any, key: str | None = None, depth: int = 0) -> Any:
        """A JSON-like value with sensitive keys' values replaced at any depth."""
        if key is not None and self.sensitive_key(key):
            return self.mark
        if depth > _MAX_DEPTH:
            return self.mark
        if isinstance(value, dict):
            return {k: self.value(v, str(k), depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v, None, depth + 1) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.mark
        return value

    def body(self, body: bytes, content_type: str | None, limit: int) -> str:
        """A body as redacted text for a sample: JSON values and form fields under
        sensitive keys replaced, patterns replaced, cut at `limit` characters."""
        if not body:
            return ""
        ctype = (content_type or "").lower()
        text: str | None = None
        if "json" in ctype or body[:1] in (b"{", b"["):
            try:
                text = orjson.dumps(self.value(orjson.loads(body))).decode()
            except (orjson.JSONDecodeError, TypeError, RecursionError):
                text = None
        if text is None and "x-www-form-urlencoded" in ctype:
            pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            text = urlencode([(k, self.mark if self.sensitive_key(k) else self.text(v))
                              for k, v in pairs])
        if text is None:
            if not ctype.startswith("text/") and "json" not in ctype and "xml" not in ctype \
                    and "html" not in ctype and ctype:
                return f"[{len(body)} bytes of {ctype}]"
            text = self.text(body.decode("utf-8", "replace"))
            text = self._json_pairs.sub(lambda m: f'{m.group(1)}"{self.mark}"', text)
        if len(text) > limit:
            text = text[:limit] + f"... [{len(text) - limit} more characters]"
        return text

    def path_is_sensitive(self, path: str) -> bool:
        """True when a JSON path or row path ends in (or passes through) a sensitive key."""
        for part in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path):
            if self.sensitive_key(part):
                return True
        return False
