"""Structured logs: one line per event, as logfmt text or as JSON (`--log-format json`).

A text line is `TIME LEVEL LOGGER: EVENT key=value ...`, each value quoted when it holds a
space, `=`, a quote, a control character or nothing (`listen="127.0.0.1:8080"` stays bare,
`detail="division by zero"` is quoted, `"` and `\\` escaped, newlines as `\\n`), so any
logfmt parser reads it back. JSON lines carry the same fields.

Log lines carry event names, route templates, ids, counts, backend names and error classes
and messages; request and reply contents never reach a log (they may hold personal data).

`Raised` is the one place internal failures of the verifier go: counted by operation,
logged with the error's class and message (`error=`, `detail=`), and with its traceback
the first time an error class is seen for an operation (later ones, one line each). `RateLimited` keeps repeated
events (a primary that stays down) to one line per interval, saying how many were folded.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections.abc import Callable

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_BARE = re.compile(r"[^\s=\"\\\x00-\x1f\x7f]+")
_MAX_MESSAGE = 500


def logfmt_value(value: object) -> str:
    """`value` as a logfmt value: bare when that parses back the same, else quoted."""
    text = value if isinstance(value, str) else str(value)
    if _BARE.fullmatch(text):
        return text
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    escaped = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", lambda m: f"\\x{ord(m[0]):02x}", escaped)
    return f'"{escaped}"'


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        event = record.getMessage()
        trace = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields.setdefault("error", type(exc).__name__)
            fields.setdefault("detail", str(exc)[:_MAX_MESSAGE])
            trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if self.json_lines:
            line = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                    "logger": record.name, "event": event, **fields}
            if trace:
                line["traceback"] = trace
            return orjson.dumps(line, default=str).decode()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        extra = " ".join(f"{k}={logfmt_value(v)}" for k, v in fields.items())
        text = f"{stamp} {record.levelname.lower():7} {record.name}: {event}" + (f" {extra}" if extra else "")
        return f"{text}\n{trace}" if trace else text


def setup(level: str = "info", fmt: str = "text") -> None:
    """Send the `shadow` loggers to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json"))
    root = logging.getLogger("shadow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class Raised:
    """Where internal failures go: `raised(operation, exc)` counts and logs, never raises."""

    def __init__(self, log: logging.Logger, count: Callable[[str], None],
                 max_traced: int = 256) -> None:
        self._log = log
        self._count = count
        self._traced: set[tuple[str, str]] = set()
        self._max_traced = max_traced

    def __call__(self, operation: str, exc: BaseException) -> None:
        self._count(operation)
        key = (operation, f"{type(exc).__module__}.{type(exc).__qualname__}")
        first = key not in self._traced and len(self._traced) < self._max_traced
        if first:
            self._traced.add(key)
        fields = {"operation": operation, "error": type(exc).__name__,
                  "detail": str(exc)[:_MAX_MESSAGE]}
        if first:
            self._log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__),
                            extra=fields)
        else:
            self._log.error("internal error", extra={**fields, "traceback": "logged before"})


class RateLimited:
    """At most one line per `interval` seconds per key; the next line says how many were
    folded into it (`suppressed=N`)."""

    def __init__(self, log: logging.Logger, interval: float = 10.0, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.interval = interval
        self._max_keys = max_keys
        self._clock = clock
        self._last: dict[tuple, tuple[float, int]] = {}

    def log(self, level: int, event: str, key: tuple, **fields: object) -> bool:
        """Log `event` unless one with the same key was logged less than `interval` ago;
        True when a line was written."""
        now = self._clock()
        last, folded = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, folded + 1)
            return False
        if len(self._last) >= self._max_keys and key not in self._last:
            self._last.clear()
        self._last[key] = (now, 0)
        if folded:
            fields["suppressed"] = folded
        self._log.log(level, event, extra=fields)
        return True
