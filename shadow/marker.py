"""The marker header: how the shadow backend knows a request is a shadow request.

The header (`X-Shadow-Request` by default) is the proxy's alone. A client that sends it
has it removed before the request goes to either backend (counted in
`shadow_marker_stripped_total`), so the primary never sees it and an app that skips mail
or payments for marked requests cannot be told to skip them in production.

Only the shadow request carries it. Its value is `mirror.marker_value` ("1"), or, when
the environment variable `mirror.marker_secret_env` holds a secret, a value no client can
make: `<exchange id>.<hex HMAC-SHA256(secret, exchange id)>`. An app that must trust the
marker (because it is reachable other than through the proxy) recomputes the HMAC with
the same secret, as `verify()` does, and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac


class Marker:
    """The marker header of one proxy: stripped from client requests, added to shadow ones."""

    def __init__(self, header: str, value: str, secret: str | None = None) -> None:
        self.header = header
        self.lower = header.lower()
        self.value = value
        self._secret = secret.encode() if secret else None

    def strip(self, headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
        """The headers without any marker header, and how many were removed."""
        kept = [(k, v) for k, v in headers if k.lower() != self.lower]
        return kept, len(headers) - len(kept)

    def for_exchange(self, exchange_id: str) -> tuple[str, str]:
        """The marker header a shadow request of this exchange carries."""
        if self._secret is None:
            return self.header, self.value
        return self.header, f"{exchange_id}.{sign(self._secret, exchange_id)}"


def sign(secret: bytes, exchange_id: str) -> str:
    return hmac.new(secret, exchange_id.encode(), hashlib.sha256).hexdigest()


def verify(value: str, secret: str) -> bool:
    """True when `value` is a marker value the proxy holding `secret` made (what an app
    does to trust the header)."""
    exchange_id, _, mac = value.rpartition(".")
    return bool(exchange_id) and hmac.compare_digest(mac, sign(secret.encode(), exchange_id))
