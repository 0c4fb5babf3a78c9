"""Input validation shared by both builds.

Every check raises `ApiError`, which the error middleware turns into
`{"error": "<message>"}` with the error's status. Both builds run the same checks, so
bad input gets the same 400 from both; in particular nothing reaches PostgreSQL that it
would reject while SQLite accepts it (NUL characters, ids beyond 32 bits, NaN).
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from aiohttp import web

MAX_ID = 2**31 - 1
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
_TAG = re.compile(r"^[a-z0-9-]{1,24}$")


class ApiError(Exception):
    """A client error: the HTTP status and the message for `{"error": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> ApiError:
    """A 400 with `message`."""
    return ApiError(400, message)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 if it is not one."""
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise bad("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad("body must be a JSON object")
    return data


def text(data: dict[str, Any], key: str, *, max_len: int, required: bool = True,
         allow_empty: bool = False) -> str | None:
    """`data[key]` as a string of at most `max_len` characters.

    Missing or null gives None unless `required`. A blank string is refused unless
    `allow_empty`; an empty string is then kept as it is, not turned into None.
    """
    value = data.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise bad(f"{key} must be a string")
    if "\x00" in value:
        raise bad(f"{key} must not contain NUL characters")
    if len(value) > max_len:
        raise bad(f"{key} must be at most {max_len} characters")
    if not allow_empty and not value.strip():
        raise bad(f"{key} must not be blank")
    return value


def username(data: dict[str, Any], key: str = "username") -> str:
    """A username: 3 to 32 of A-Z a-z 0-9 _ . -"""
    value = text(data, key, max_len=32)
    assert value is not None
    if not _USERNAME.match(value):
        raise bad(f"{key} must be 3-32 characters of letters, digits, '_', '.', '-'")
    return value


def password(data: dict[str, Any]) -> str:
    """A password of 8 to 128 characters."""
    value = text(data, "password", max_len=128)
    assert value is not None
    if len(value) < 8:
        raise bad("password must be at least 8 characters")
    return value


def integer(data: dict[str, Any], key: str, *, low: int, high: int) -> int:
    """A required JSON integer (not a boolean, not 7.0) within [low, high]."""
    value = data.get(key)
    if value is None:
        raise bad(f"{key} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(f"{key} must be an integer from {low} to {high}")
    return value


def number(data: dict[str, Any], key: str, *, low: float, high: float) -> float | None:
    """An optional finite JSON number within [low, high], as a float; None if absent."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{key} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise bad(f"{key} must be between {low:g} and {high:g}")
    return float(value)


def flag(data: dict[str, Any], key: str) -> bool | None:
    """An optional JSON boolean; None if absent."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(f"{key} must be true or false")
    return value


def tags(data: dict[str, Any], key: str = "tags") -> list[str]:
    """Up to 10 distinct tags of 1-24 characters a-z 0-9 -; [] if absent."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 10:
        raise bad(f"{key} must be a list of at most 10 tags")
    if not all(isinstance(tag, str) and _TAG.match(tag) for tag in value):
        raise bad(f"{key} must be 1-24 characters of a-z, 0-9, '-'")
    if len(set(value)) != len(value):
        raise bad(f"{key} must not repeat a tag")
    return value


def _is_small_int(raw: str) -> bool:
    return 0 < len(raw) <= 10 and raw.isascii() and raw.isdigit()


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive 32-bit id from the path; 404 for anything else (it names nothing)."""
    raw = request.match_info[name]
    if not _is_small_int(raw) or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(404, "not found")
    return int(raw)


def query_limit(request: web.Request, *, default: int, maximum: int) -> int:
    """`?limit=` as an integer in [1, maximum], `default` if absent."""
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not _is_small_int(raw) or not 1 <= int(raw) <= maximum:
        raise bad(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def query_search(request: web.Request, key: str = "q") -> str | None:
    """`?q=` as a search string of at most 100 characters; None if absent or empty."""
    raw = request.query.get(key, "")
    if "\x00" in raw:
        raise bad(f"{key} must not contain NUL characters")
    if len(raw) > 100:
        raise bad(f"{key} must be at most 100 characters")
    return raw or None
