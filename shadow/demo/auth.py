"""Passwords and cookie sessions, identical in both builds.

A session is a signed cookie, not a row: `session=<user id>.<expires>.<signature>`, the
signature an HMAC-SHA256 over "<user id>.<expires>" with a secret both builds share. A
cookie issued by one build is therefore valid on the other, which is what a shadow proxy
needs: it forwards the client's cookie to both. `expires` is the start of the current
time window plus the lifetime, so both builds issue byte-identical Set-Cookie values for
the same user within one window.

A CSRF token is stateless in the same way: `<nonce>.<issued>.<signature>`, a random
nonce, the Unix second it was issued and an HMAC over both, valid for `csrf_ttl` seconds
on either build. Every call of `csrf_token` returns a fresh one.

Passwords are hashed with scrypt and a random salt; the hash string
(`scrypt$n$r$p$salt$hash`, base64 parts) lives only in the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web

COOKIE_NAME = "session"
CSRF_HEADER = "X-CSRF-Token"
DEMO_SECRET = b"shadow-demo: not a production secret"
"""The secret the demo builds share unless told otherwise (`--secret`)."""

_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, as one self-describing string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the hash string `stored`; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class SessionCodec:
    """Issues and reads session cookies.

    `ttl` is the lifetime in seconds, `window` the granularity of `expires`: every cookie
    issued for a user within one window is the same string. `clock` returns Unix time.
    `csrf_ttl` is the lifetime of a CSRF token in seconds.
    """

    secret: bytes = DEMO_SECRET
    ttl: int = 14 * 86400
    window: int = 3600
    clock: Callable[[], float] = time.time
    csrf_ttl: int = 3600

    def csrf_token(self) -> str:
        """A fresh CSRF token (random, so never the same twice)."""
        payload = f"{secrets.token_urlsafe(12)}.{int(self.clock())}"
        return f"{payload}.{self._sign('csrf.' + payload)}"

    def csrf_valid(self, token: str | None) -> bool:
        """Whether `token` was issued by a build sharing the secret and has not expired."""
        parts = (token or "").split(".")
        if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit():
            return False
        payload = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(parts[2], self._sign("csrf." + payload)):
            return False
        return 0 <= self.clock() - int(parts[1]) <= self.csrf_ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, user_id: int) -> tuple[str, int]:
        """The cookie value for `user_id` and its expiry (Unix seconds)."""
        now = int(self.clock())
        expires = now - now % self.window + self.ttl
        payload = f"{user_id}.{expires}"
        return f"{payload}.{self._sign(payload)}", expires

    def read(self, value: str | None) -> int | None:
        """The user id in a cookie value, or None if it is malformed, forged or expired."""
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(parts[2], self._sign(payload)):
            return None
        if int(parts[1]) <= self.clock():
            return None
        return int(parts[0])

    def set_cookie(self, response: web.StreamResponse, user_id: int) -> None:
        """Add the Set-Cookie header that logs `user_id` in."""
        value, expires = self.issue(user_id)
        response.set_cookie(
            COOKIE_NAME, value, expires=formatdate(expires, usegmt=True),
            path="/", httponly=True, samesite="Lax",
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        """Add the Set-Cookie header that logs the client out."""
        response.del_cookie(COOKIE_NAME, path="/")
