"""Keyed fingerprints: "equal on both sides" and "the same value as in that other sample"
stay visible while the value itself is not stored.

A fingerprint is HMAC-SHA256 over the value's text, keyed with a per-installation secret
and cut to 12 hex digits (`#3fa9c2e1b0d4`). The text is type-blind (`3.0` and `"3.0"`
share a fingerprint; the stored types tell them apart), so a type change of an equal
value reads as such. Without the key a fingerprint cannot be checked against guesses,
which is why the key never goes into the state file: it comes from an environment
variable, or from a key file created 0600 next to the state file on first start.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

DIGITS = 12
MIN_KEY_CHARS = 32


class PrivacyKeyError(Exception):
    """The fingerprint key cannot be had safely; the message says what to do."""


def canonical(value: Any) -> bytes:
    """The type-blind text of a value that a fingerprint is computed over."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if value is None:
        return b"null"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(value).encode("utf-8", "replace")


class Fingerprinter:
    """Fingerprints values with one key. Pure; safe to share."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_CHARS:
            raise PrivacyKeyError(f"the fingerprint key has {len(key)} bytes; at least "
                                  f"{MIN_KEY_CHARS} are needed")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def of(self, value: Any) -> str:
        mac = self._keyed.copy()  # the key's pads are computed once, not per value
        mac.update(canonical(value))
        return "#" + mac.hexdigest()[:DIGITS]


def key_path(state_path: str, key_file: str | None) -> Path:
    """Where the key file is: `key_file`, else the state file's path + `.key`."""
    return Path(key_file) if key_file else Path(state_path + ".key")


def load_key(*, state_path: str, key_file: str | None, key_env: str,
             environ: Mapping[str, str] = os.environ) -> bytes:
    """The installation's fingerprint key: from `$key_env` when set, else from the key
    file, which is created (0600, 32 random bytes as hex) when it does not exist.
    Raises PrivacyKeyError when the key is too short or the file is readable by others."""
    given = environ.get(key_env)
    if given:
        if len(given) < MIN_KEY_CHARS:
            raise PrivacyKeyError(f"${key_env} holds {len(given)} characters; the fingerprint "
                                  f"key needs at least {MIN_KEY_CHARS}")
        return given.encode()
    path = key_path(state_path, key_file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrivacyKeyError(f"{path}: the fingerprint key file is open to other users "
                              f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    key = path.read_text(encoding="ascii", errors="replace").strip()
    if len(key) < MIN_KEY_CHARS:
        raise PrivacyKeyError(f"{path}: the fingerprint key has {len(key)} characters; at "
                              f"least {MIN_KEY_CHARS} are needed (delete the file to get a "
                              "new one; earlier fingerprints then no longer match)")
    return key.encode()
