"""Helpers shared by the compare tests: replies built from values, in memory."""

from __future__ import annotations

from typing import Any

import orjson

from shadow.verdict import Reply

JSON = (("Content-Type", "application/json"),)


def reply(body: Any = b"", *, status: int = 200, headers=JSON, error: str | None = None) -> Reply:
    """A Reply; a body that is not bytes is encoded as JSON."""
    if not isinstance(body, bytes):
        body = orjson.dumps(body)
    return Reply(status, tuple(headers), body, 0.01, error)


def replaced(doc: Any, path: tuple, value: Any) -> Any:
    """A deep copy of JSON document `doc` with the value at `path` (keys and indices)
    replaced by `value`."""
    if not path:
        return value
    copy = orjson.loads(orjson.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy
