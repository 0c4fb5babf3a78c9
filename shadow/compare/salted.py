"""Salted password hashes: compared by scheme, never by value (pure: no I/O).

A build that hashes a password with a random salt writes a different string every time,
so the legacy and the candidate build never store the same hash for the same password.
What the port can get wrong, and what is compared instead, is everything but the salt and
the digest: the scheme, its parameters (cost, rounds, memory) and the lengths of salt and
digest. Recognised by shape, so no per-column rule is needed:

    $2b$12$<salt and digest>                 bcrypt (modular crypt format)
    $argon2id$v=19$m=65536,t=3,p=4$<s>$<d>   argon2
    $6$rounds=5000$<s>$<d>                   sha512-crypt (also $5$, $1$, $y$)
    pbkdf2_sha256$870000$<s>$<d>             Django
    pbkdf2:sha256:600000$<s>$<d>             Werkzeug (also scrypt:32768:8:1$<s>$<d>)
    scrypt$16384$8$1$<s>$<d>                 scheme first, parameters, salt, digest

A hash of the wrong password cannot be told from a right one without the password; it
shows where the app checks it (a login that answers 401 on one side).
"""

from __future__ import annotations

import re
from typing import Any

_SCHEME = re.compile(
    r"(?:argon2(?:id|i|d)?|bcrypt(?:_sha256)?|scrypt(?::[\d:]+)?|pbkdf2(?:[_:-][\w:-]+)?|"
    r"sha(?:256|512)_crypt|yescrypt)", re.IGNORECASE)
_CRYPT_IDS = re.compile(r"2[abxy]?|[156y]")
"""Scheme ids known only in the modular crypt format (`$6$...`)."""
_BCRYPT = frozenset({"2", "2a", "2b", "2x", "2y"})
_ENCODED = re.compile(r"[A-Za-z0-9+/=._-]{8,}")


def shape(value: Any) -> tuple[str, ...] | None:
    """What a salted hash is compared by: its scheme and parameters, and the lengths of
    its salt and digest; None when `value` is no salted hash this module knows."""
    if type(value) is not str or "$" not in value or len(value) > 1024:
        return None
    parts = value.split("$")
    modular = parts[0] == ""
    body = [p for p in parts if p]  # `bcrypt_sha256$$2b$...` nests a crypt string
    if len(body) < 2 or not (_SCHEME.fullmatch(body[0])
                             or (modular and _CRYPT_IDS.fullmatch(body[0]))):
        return None
    scheme = body[0].lower()
    inner = scheme in _BCRYPT or (len(body) > 1 and body[1].lower() in _BCRYPT)
    secret = body[-1:] if inner else body[-2:]
    if len(secret) < (1 if inner else 2) or not all(_ENCODED.fullmatch(s) for s in secret):
        return None
    fixed = body[:len(body) - len(secret)]
    return (*fixed, *(f"<{len(s)}>" for s in secret))


def same_scheme(primary: Any, shadow: Any) -> bool:
    """True when both values are salted hashes of one scheme with the same parameters."""
    p = shape(primary)
    return p is not None and p == shape(shadow)
