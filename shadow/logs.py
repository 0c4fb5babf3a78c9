"""Structured logs: one line per event, as `key=value` text or as JSON (`--log-format json`).

Log lines carry event names, route templates, ids, counts and error classes only; request
and reply contents never reach a log (they may hold personal data), so nothing here needs
redacting.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        event = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            fields["error"] = type(record.exc_info[1]).__name__
        if self.json_lines:
            line = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                    "logger": record.name, "event": event, **fields}
            return orjson.dumps(line, default=str).decode()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{stamp} {record.levelname.lower():7} {record.name}: {event}" + (f" {extra}" if extra else "")


def setup(level: str = "info", fmt: str = "text") -> None:
    """Send the `shadow` loggers to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json"))
    root = logging.getLogger("shadow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
